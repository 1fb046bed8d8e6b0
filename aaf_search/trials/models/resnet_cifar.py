"""CIFAR ResNet-8 .. ResNet-56 with option-A (zero-pad) shortcuts: seed 000's ResNets.

He et al., "Deep Residual Learning for Image Recognition" (arXiv 1512.03385), section 4.2: a 3x3 conv
stem with 16 channels, three stages of n BasicBlocks with 16, 32 and 64 channels (the first block of
stages 2 and 3 has stride 2), global average pooling and a linear head; depth = 6n + 2. Option A
shortcuts add no parameters: subsample by the stride and zero-pad the new channels. Code as in
Pishchik's ``model/resnet.py`` (seed 000) and kostas1515/AGLU ``resnet_cifar.py`` (seed 004), both
after Yerlan Idelbayev's implementation.

Slots: ``stem.act`` (conv, stem); ``stageS.blockB.act1`` after bn1 and ``stageS.blockB.act2`` after the
residual add (conv, block; the last ``act2`` of each stage also stage_end). The original applies one
shared ``nn.ReLU`` at every site; here every site is its own slot, and an activation plan with
``shape="network"`` restores the sharing.

Init, as in seed 000: Kaiming-normal on the weights of every conv and linear layer, except the stem
conv and the head, which the original re-creates after its init pass (PyTorch default init).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.trials.models._base import Builder, InputShape, ModelInfo, kaiming_normal_init
from aaf_search.trials.slots import ActivationSlot

SOURCE = "seed 000 (Pishchik, model/resnet.py; He et al. 2015)"
WIDTHS = (16, 32, 64)  # channels of the stem and of stages 1, 2, 3

AttentionFactory = Callable[[int], nn.Module]
"""``factory(channels)`` builds a module applied to the residual branch before the add (SE)."""


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: take every ``stride``-th pixel and zero-pad the channels up to ``out_channels``.

    The original pads ``planes // 4`` channels on each side when the channels double; the general form
    puts half of the new channels in front and the rest behind, which is the same for 16/32/64.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option-A shortcut cannot reduce channels ({in_channels} -> {out_channels})")
        self.stride = stride
        self.pad_front = (out_channels - in_channels) // 2
        self.pad_back = out_channels - in_channels - self.pad_front

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad=({self.pad_front}, {self.pad_back})"


class BasicBlock(nn.Module):
    """conv3x3-BN-act1-conv3x3-BN (-attention) + shortcut, then act2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        base_activation: str,
        *,
        stage_end: bool = False,
        attention: AttentionFactory | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = ActivationSlot(base_activation, tags=("conv", "block"))
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se: nn.Module | None = attention(out_channels) if attention is not None else None
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut: nn.Module = (
            ZeroPadShortcut(in_channels, out_channels, stride) if needs_projection else nn.Identity()
        )
        end_tags = ("stage_end",) if stage_end else ()
        self.act2 = ActivationSlot(base_activation, tags=("conv", "block", *end_tags))

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.act2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet with ``blocks`` BasicBlocks in each of its three stages."""

    def __init__(
        self,
        blocks: int,
        input_shape: InputShape,
        num_classes: int,
        base_activation: str,
        *,
        attention: AttentionFactory | None = None,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(input_shape[0], WIDTHS[0], 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(WIDTHS[0]),
                act=ActivationSlot(base_activation, tags=("conv", "stem")),
            )
        )
        stages: list[nn.Sequential] = []
        in_channels = WIDTHS[0]
        for stage, width in enumerate(WIDTHS, start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for block in range(1, blocks + 1):
                stride = 2 if stage > 1 and block == 1 else 1
                layers[f"block{block}"] = BasicBlock(
                    in_channels,
                    width,
                    stride,
                    base_activation,
                    stage_end=block == blocks,
                    attention=attention,
                )
                in_channels = width
            stages.append(nn.Sequential(layers))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        out = self.stage3(self.stage2(self.stage1(out)))
        return self.head(self.flatten(self.pool(out)))


DEPTHS = (8, 14, 20, 26, 32, 44, 56)


def blocks_for_depth(depth: int) -> int:
    """BasicBlocks per stage for a CIFAR ResNet of ``depth`` layers (depth = 6n + 2)."""
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 with n >= 1, not {depth}")
    return (depth - 2) // 6


def _builder(depth: int) -> Builder:
    def build(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
        model = CifarResNet(blocks_for_depth(depth), input_shape, num_classes, base_activation)
        stem_conv = model.stem.get_submodule("conv")
        kaiming_normal_init(m for m in model.modules() if m is not stem_conv and m is not model.head)
        return model

    return build


ENTRIES = tuple(
    ModelInfo(
        f"resnet{depth}",
        f"CIFAR ResNet-{depth}, option-A shortcuts, blocks per stage {[blocks_for_depth(depth)] * 3}",
        SOURCE,
        None,
        _builder(depth),
    )
    for depth in DEPTHS
)
