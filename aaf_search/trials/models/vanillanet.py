"""A small VanillaNet with seed 002's activation placement (LSLU).

Chen et al., "VanillaNet: the Power of Minimalism in Deep Learning" (arXiv 2305.12972), as used by
Feng et al., "Learnable Series Linear Units" (arXiv 2409.08283, ``VanillaNet_LSLU.py``; see
SPEC-activations.md 3.2):

- stem: conv 4x4 stride 4 + BN -> leaky_relu(act_learn) -> conv 1x1 + BN -> slot ``stem.act``
  (conv, stem);
- stage S: conv 1x1 + BN -> leaky_relu(act_learn) -> conv 1x1 + BN -> max-pool 2 -> slot
  ``stageS.act`` (conv, stage_end);
- classifier: global average pool -> dropout -> conv 1x1 + BN -> leaky_relu(act_learn) -> conv 1x1.

The widths default to [32, 64, 128, 256] (three stages) so that it trains on a CPU; the seed's
``vanillanet_5`` uses [512, 1024, 2048, 4096]. BN eps is 1e-6 and conv/linear weights are truncated
normal (std 0.02) with zero bias, as in the original. The seed's slot activation also holds a depthwise
conv and a BN (VanillaNet's "series informed activation"); here a slot holds only the activation, and
the LSLU family brings its own conv and BN.

Deep-training trick: ``leaky_relu(x, act_learn)`` is ReLU at ``act_learn = 0`` and the identity at 1,
after which the two 1x1 convs of a stage can be fused. The original anneals ``act_learn`` from 0 to 1
over ``decay_epochs`` epochs (:func:`act_learn_schedule`) and calls ``change_act`` before each epoch;
here that is ``model.set_act_learn(value)`` (or :func:`set_act_learn` on any model). A fresh model
has ``act_learn = 1.0``, the original constructor's value and the end state of the schedule, so a
loop that never calls it trains the fused-form network; call ``set_act_learn(0.0)`` before the first
epoch to follow the original schedule. Note that the classifier BN sees one value per channel and
sample, so a training batch needs at least 2 samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.trials.models._base import InputShape, ModelInfo
from aaf_search.trials.slots import ActivationSlot

SOURCE = "seed 002 (Feng et al., VanillaNet_LSLU.py; Chen et al. 2023)"
DIMS = (32, 64, 128, 256)  # stem width, then the output width of each stage
BN_EPS = 1e-6  # VanillaNet's BatchNorm eps
INIT_STD = 0.02  # truncated-normal std of conv weights (timm's trunc_normal_)


def _conv_bn(in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, stride=stride), nn.BatchNorm2d(out_channels, eps=BN_EPS)]


class Stem(nn.Module):
    """conv4x4/4 + BN -> leaky_relu(act_learn) -> conv1x1 + BN -> slot."""

    def __init__(self, in_channels: int, dim: int, base_activation: str) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, dim, 4, 4)
        self.conv2, self.bn2 = _conv_bn(dim, dim)
        self.act = ActivationSlot(base_activation, tags=("conv", "stem"))
        self.act_learn = 1.0

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.bn1(self.conv1(x)), self.act_learn)
        return self.act(self.bn2(self.conv2(x)))


class Stage(nn.Module):
    """VanillaNet's Block: conv1x1 + BN -> leaky_relu(act_learn) -> conv1x1 + BN -> pool -> slot."""

    def __init__(self, dim: int, dim_out: int, stride: int, base_activation: str) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(dim, dim)
        self.conv2, self.bn2 = _conv_bn(dim, dim_out)
        self.pool: nn.Module = nn.MaxPool2d(stride) if stride > 1 else nn.Identity()
        self.act = ActivationSlot(base_activation, tags=("conv", "stage_end"))
        self.act_learn = 1.0

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.bn1(self.conv1(x)), self.act_learn)
        return self.act(self.pool(self.bn2(self.conv2(x))))


class Classifier(nn.Module):
    """avgpool -> dropout -> conv1x1 + BN -> leaky_relu(act_learn) -> conv1x1, flattened."""

    def __init__(self, dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.conv1, self.bn1 = _conv_bn(dim, num_classes)
        self.conv2 = nn.Conv2d(num_classes, num_classes, 1)
        self.act_learn = 1.0

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.conv1(self.dropout(self.pool(x))))
        return self.conv2(F.leaky_relu(x, self.act_learn)).flatten(1)


class VanillaNet(nn.Module):
    """Stem, one stride-2 stage per consecutive pair of ``dims``, classifier."""

    def __init__(
        self,
        input_shape: InputShape,
        num_classes: int,
        base_activation: str,
        *,
        dims: Sequence[int] = DIMS,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = Stem(input_shape[0], dims[0], base_activation)
        self.num_stages = len(dims) - 1
        for index in range(self.num_stages):
            self.add_module(f"stage{index + 1}", Stage(dims[index], dims[index + 1], 2, base_activation))
        self.classifier = Classifier(dims[-1], num_classes, dropout)
        self.act_learn = 1.0
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def set_act_learn(self, value: float) -> None:
        """Set the leaky_relu slope of the deep-training trick everywhere (0: ReLU, 1: identity)."""
        self.act_learn = float(value)
        for module in self.modules():
            if isinstance(module, (Stem, Stage, Classifier)):
                module.act_learn = float(value)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for index in range(1, self.num_stages + 1):
            x = self.get_submodule(f"stage{index}")(x)
        return self.classifier(x)


def act_learn_schedule(epoch: float, decay_epochs: float, *, linear: bool = True) -> float:
    """The original's ``act_learn`` for an epoch: ``epoch / decay_epochs`` (or a half cosine), then 1.

    ``epoch`` counts from 0; ``decay_epochs <= 0`` switches the trick off (always 1).
    """
    if decay_epochs <= 0 or epoch >= decay_epochs:
        return 1.0
    progress = max(epoch, 0.0) / decay_epochs
    return progress if linear else 0.5 * (1.0 - math.cos(math.pi * progress))


def set_act_learn(model: nn.Module, value: float) -> bool:
    """Call ``set_act_learn(value)`` on every VanillaNet inside ``model``; ``False`` when there is none."""
    found = False
    for module in model.modules():
        if isinstance(module, VanillaNet):
            module.set_act_learn(value)
            found = True
    return found


def build_vanillanet(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
    return VanillaNet(input_shape, num_classes, base_activation)


# The stem divides the size by 4 and each of the 3 stages by 2, so 32 is the smallest size that
# leaves one pixel for the classifier.
ENTRIES = (
    ModelInfo(
        "vanillanet",
        f"small VanillaNet, dims {list(DIMS)}, slots at the stem and each stage end",
        SOURCE,
        4 * 2 ** (len(DIMS) - 1),
        build_vanillanet,
    ),
)
