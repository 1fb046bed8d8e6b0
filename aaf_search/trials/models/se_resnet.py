"""SE-ResNet-32 for CIFAR: seed 004's APA/AGLU test bed.

Alexandridis et al., "Adaptive Parametric Activation" (ECCV 2024, arXiv 2407.08567), kostas1515/AGLU
``classification/resnet_cifar.py`` ``se_resnet32`` with ``Se_Block_Gumbel``: the option-A CIFAR
ResNet-32 of :mod:`resnet_cifar`, with a squeeze-and-excitation module on the residual branch of
every BasicBlock (after bn2, before the add). The SE module is the one the original uses with APA
(SPEC-activations.md 4.1): global average pool -> LayerNorm(c) -> Linear(c, c/r, no bias) -> act ->
Linear(c/r, c, no bias) -> Dropout 0.1 -> gate -> x * gate.

Slots, besides the ResNet's: ``stageS.blockB.se.act`` (fc) and ``stageS.blockB.se.gate``
(attention_gate). The gate's base activation is always ``sigmoid`` (what SE uses when APA is off),
whatever ``base_activation`` is, because a ReLU gate would not be a gate; put APA in it with the plan
selector ``tag:attention_gate``.

Init, as in seed 004: Kaiming-normal on the weights of every conv and linear layer, the stem and
the head included.
"""

from __future__ import annotations

from torch import Tensor, nn

from aaf_search.trials.models._base import InputShape, ModelInfo, kaiming_normal_init
from aaf_search.trials.models.resnet_cifar import CifarResNet
from aaf_search.trials.slots import ActivationSlot

SOURCE = "seed 004 (Alexandridis et al., AGLU resnet_cifar.py se_resnet32)"
REDUCTION = 4  # c -> c/r in the excitation; the original SE_Block's default r (16/32/64 -> 4/8/16)
GATE_ACTIVATION = "sigmoid"
SE_DROPOUT = 0.1


class SqueezeExcitation(nn.Module):
    """Channel attention of Hu et al. (2018) in seed 004's APA form (LayerNorm and Dropout added)."""

    def __init__(self, channels: int, base_activation: str, *, reduction: int = REDUCTION) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)  # at least one unit for narrow inputs
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(channels)
        self.reduce = nn.Linear(channels, hidden, bias=False)
        self.act = ActivationSlot(base_activation, tags=("fc",))
        self.expand = nn.Linear(hidden, channels, bias=False)
        self.dropout = nn.Dropout(SE_DROPOUT)
        self.gate = ActivationSlot(GATE_ACTIVATION, tags=("attention_gate",))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.squeeze(x).flatten(1))
        y = self.dropout(self.expand(self.act(self.reduce(y))))
        return x * self.gate(y)[:, :, None, None]


def build_se_resnet32(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
    model = CifarResNet(
        5,
        input_shape,
        num_classes,
        base_activation,
        attention=lambda channels: SqueezeExcitation(channels, base_activation),
    )
    kaiming_normal_init(model.modules())
    return model


ENTRIES = (
    ModelInfo(
        "se_resnet32",
        "CIFAR ResNet-32 with an SE block per BasicBlock (sigmoid gate slots)",
        SOURCE,
        None,
        build_se_resnet32,
    ),
)
