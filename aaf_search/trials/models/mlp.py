"""DNN2, DNN3 and DNN5: the fully-connected networks of seed 000.

Pishchik, "Trainable Activations for Image Classification" (preprint doi 10.20944/preprints202301.0463.v1),
``model/dnn.py``. The input is flattened and passed through hidden ``Linear -> activation`` layers of
widths [392], [392, 196] or [512, 256, 128, 64] (built for 784-pixel MNIST; other inputs keep the same
widths), then a ``Linear`` to the classes.

Slots: ``fc.act1`` .. ``fc.actK`` (tag ``fc``), one per hidden layer.

Init, reproduced from the original: ``DNN`` applies Kaiming-normal to the weights of the layers it
builds, then the wrappers re-create the first and the last ``Linear`` with PyTorch's default init. So
only the hidden-to-hidden layers are Kaiming-initialised (DNN2 has none).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from aaf_search.trials.models._base import Builder, InputShape, ModelInfo, kaiming_normal_init
from aaf_search.trials.slots import ActivationSlot

SOURCE = "seed 000 (Pishchik, model/dnn.py)"


class DNN(nn.Module):
    """Flatten, then ``Linear -> slot`` per hidden width, then a ``Linear`` head."""

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int, base_activation: str) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = in_features
        for index, out in enumerate(hidden, start=1):
            layers[f"linear{index}"] = nn.Linear(width, out)
            layers[f"act{index}"] = ActivationSlot(base_activation, tags=("fc",))
            width = out
        self.fc = nn.Sequential(layers)
        self.head = nn.Linear(width, num_classes)
        # Kaiming on the hidden-to-hidden layers only: the original's first and last layers are
        # re-created after its init pass, so they keep PyTorch's default init.
        kaiming_normal_init(self.fc.get_submodule(f"linear{i}") for i in range(2, len(hidden) + 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc(self.flatten(x)))


def _builder(hidden: tuple[int, ...]) -> Builder:
    def build(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
        channels, height, width = input_shape
        return DNN(channels * height * width, hidden, num_classes, base_activation)

    return build


ENTRIES = (
    ModelInfo("dnn2", "MLP, hidden [392]", SOURCE, None, _builder((392,))),
    ModelInfo("dnn3", "MLP, hidden [392, 196]", SOURCE, None, _builder((392, 196))),
    ModelInfo("dnn5", "MLP, hidden [512, 256, 128, 64]", SOURCE, None, _builder((512, 256, 128, 64))),
)
