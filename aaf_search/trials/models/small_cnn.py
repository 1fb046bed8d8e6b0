"""LeNet-5 and KerasNet: the small CNNs of seeds 001 and 003 (Bodyanskiy & Kostiuk).

Both follow arXiv 1801.09403 as coded in ``s-kostyuk/leaf-aaf`` ``nns_aaf/{lenet,kerasnet}_aaf.py``
(SPEC-activations.md 2.5), with PyTorch's default init.

LeNet-5: conv 20@5x5 (no bias) -> act -> maxpool 2 -> conv 50@5x5 (no bias) -> act -> maxpool 2
-> flatten -> fc 500 (bias) -> act -> fc classes (**no bias**). Slots ``features.act1``,
``features.act2`` (conv) and ``fc.act1`` (fc); the original calls them act1, act2, act3.

KerasNet: conv 32@3x3 pad 1 -> act -> conv 32@3x3 -> act -> maxpool 2 -> Dropout2d 0.25 -> conv
64@3x3 pad 1 -> act -> conv 64@3x3 -> act -> maxpool 2 -> Dropout2d 0.25 -> flatten -> fc 512 -> act
-> Dropout **0.2** (the code's value; its docstring says 50 %) -> fc classes. Slots
``features.act1..act4`` (conv) and ``fc.act1`` (fc); the original calls them act1, act2, act4, act5
(conv, although its docstring calls act5 an FFN activation) and act7.

The input size of the first fc layer is computed from the input shape (4*4*50 / 5*5*50 for LeNet-5 on
28x28 / 32x32, 5*5*64 / 6*6*64 for KerasNet).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from aaf_search.trials.models._base import InputShape, ModelInfo, conv_out
from aaf_search.trials.slots import ActivationSlot

SOURCE = "seeds 001/003 (Kostiuk, nns_aaf/)"


def _conv_slot(base_activation: str) -> ActivationSlot:
    return ActivationSlot(base_activation, tags=("conv",))


def _fc_slot(base_activation: str) -> ActivationSlot:
    return ActivationSlot(base_activation, tags=("fc",))


class LeNet5(nn.Module):
    """LeNet-5 as in arXiv 1801.09403 (see the module docstring for the layers and the bias quirks)."""

    def __init__(self, input_shape: InputShape, num_classes: int, base_activation: str) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(channels, 20, 5, bias=False),
                act1=_conv_slot(base_activation),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(20, 50, 5, bias=False),
                act2=_conv_slot(base_activation),
                pool2=nn.MaxPool2d(2),
            )
        )
        h, w = (conv_out(conv_out(s, 5), 2, stride=2) for s in (height, width))
        h, w = (conv_out(conv_out(s, 5), 2, stride=2) for s in (h, w))
        self.flatten = nn.Flatten()
        self.fc = nn.Sequential(OrderedDict(linear1=nn.Linear(50 * h * w, 500), act1=_fc_slot(base_activation)))
        self.head = nn.Linear(500, num_classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc(self.flatten(self.features(x))))


class KerasNet(nn.Module):
    """The Keras 1.x cifar10_cnn example as in arXiv 1801.09403 (layers in the module docstring)."""

    def __init__(self, input_shape: InputShape, num_classes: int, base_activation: str) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(channels, 32, 3, padding=1),
                act1=_conv_slot(base_activation),
                conv2=nn.Conv2d(32, 32, 3),
                act2=_conv_slot(base_activation),
                pool1=nn.MaxPool2d(2),
                drop1=nn.Dropout2d(0.25),
                conv3=nn.Conv2d(32, 64, 3, padding=1),
                act3=_conv_slot(base_activation),
                conv4=nn.Conv2d(64, 64, 3),
                act4=_conv_slot(base_activation),
                pool2=nn.MaxPool2d(2),
                drop2=nn.Dropout2d(0.25),
            )
        )
        # Each half keeps the size (pad 1), loses 2 (no pad), then halves (pool).
        h, w = (conv_out(conv_out(s, 3), 2, stride=2) for s in (height, width))
        h, w = (conv_out(conv_out(s, 3), 2, stride=2) for s in (h, w))
        self.flatten = nn.Flatten()
        self.fc = nn.Sequential(
            OrderedDict(
                linear1=nn.Linear(64 * h * w, 512),
                act1=_fc_slot(base_activation),
                drop1=nn.Dropout(0.2),
            )
        )
        self.head = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc(self.flatten(self.features(x))))


def build_lenet5(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
    return LeNet5(input_shape, num_classes, base_activation)


def build_kerasnet(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
    return KerasNet(input_shape, num_classes, base_activation)


# Smallest sizes that leave at least one pixel after the last pool: LeNet-5 16 -> 12 -> 6 -> 2 -> 1;
# KerasNet 10 -> 10 -> 8 -> 4 -> 4 -> 2 -> 1.
ENTRIES = (
    ModelInfo("lenet5", "LeNet-5 (arXiv 1801.09403), 2 conv + 1 fc slots", SOURCE, 16, build_lenet5),
    ModelInfo("kerasnet", "KerasNet (Keras cifar10_cnn), 4 conv + 1 fc slots", SOURCE, 10, build_kerasnet),
)
