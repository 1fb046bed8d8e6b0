"""torchvision blocks that ``tv:`` models swap in, kept apart so that only those models import torchvision.

Why apart: importing torchvision's models takes over a second (it imports ``torch._dynamo``), and every
other model, the search's pre-flight, ``spaces`` and ``models`` would pay it at start-up.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.efficientnet import FusedMBConv


class FusedMBConvOutOfPlace(FusedMBConv):
    """EfficientNetV2's FusedMBConv with its shortcut added out of place (same values)."""

    def forward(self, input: Tensor) -> Tensor:
        result: Tensor = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + input
        return result


def fused_mbconv_out_of_place(net: nn.Module) -> None:
    """Make EfficientNetV2's ``FusedMBConv`` blocks add their shortcut out of place.

    Why: a block without expansion ends in an activation and adds its shortcut to that output with
    ``+=``. torchvision's SiLU there does not need its output for backward, but the activations a slot
    may hold do (ReLU, Sigmoid, Tanh, ELU keep it, so does APA's final exp): with one of them every
    trial failed in its first backward pass ("modified by an inplace operation"). (Dropout modules,
    the other way torchvision overwrites an activation's output, are made out of place for any model
    by :func:`~aaf_search.trials.discover.wrap_activations`.)
    """
    for module in net.modules():
        if type(module) is FusedMBConv:
            module.__class__ = FusedMBConvOutOfPlace
