"""Fixed (non-trainable) activations behind the registry interface, plus PReLU.

They exist so that "keep ReLU" is one more choice in a search space and so that every model's base
activation comes from the same registry as the trainable ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.activations._common import Elementwise, broadcast
from aaf_search.activations.registry import Activation, ParamShape, Reduction, register


class _Fixed(Activation):
    """A parameter-free activation; ``fn`` is the function it applies."""

    shapes: ClassVar[tuple[ParamShape, ...]] = ("network", "layer", "channel", "neuron")
    fn: ClassVar[Callable[[Tensor], Tensor]]

    def __init__(self, *, param_shape: tuple[int, ...] = (1,)) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x)


def _identity(x: Tensor) -> Tensor:
    return x


def _fixed(class_name: str, family: str, fn: Callable[[Tensor], Tensor], summary: str) -> type[Activation]:
    # The class is bound to ``class_name`` in this module, and __qualname__ must say so, or pickling a
    # model that holds one of these fails with "attribute lookup ... failed".
    namespace = {
        "family": family,
        "fn": staticmethod(fn),
        "summary": summary,
        "source": "baseline",
        "__qualname__": class_name,
        "__module__": __name__,
        "__doc__": f"{family}(x) = {summary} (fixed, no parameters).",
    }
    return register(type(class_name, (_Fixed,), namespace))


ReLU = _fixed("ReLU", "relu", F.relu, "max(0, x)")
LeakyReLU = _fixed("LeakyReLU", "leaky_relu", F.leaky_relu, "max(0, x) + 0.01 min(0, x)")
ELU = _fixed("ELU", "elu", F.elu, "x if x > 0 else exp(x) - 1")
SELU = _fixed("SELU", "selu", F.selu, "scale * elu(x, alpha) with the self-normalising constants")
SiLU = _fixed("SiLU", "silu", F.silu, "x * sigmoid(x) (swish)")
GELU = _fixed("GELU", "gelu", F.gelu, "x * Phi(x), exact erf form")
Mish = _fixed("Mish", "mish", F.mish, "x * tanh(softplus(x))")
Tanh = _fixed("Tanh", "tanh", torch.tanh, "tanh(x)")
Sigmoid = _fixed("Sigmoid", "sigmoid", torch.sigmoid, "1 / (1 + exp(-x))")
Softsign = _fixed("Softsign", "softsign", F.softsign, "x / (1 + |x|)")
Softplus = _fixed("Softplus", "softplus", F.softplus, "log(1 + exp(x))")
Identity = _fixed("Identity", "identity", _identity, "x")


@register
class PReLU(Elementwise):
    """PReLU (He et al., 2015): max(0, x) + a * min(0, x) with a learnable slope ``a`` (init 0.25)."""

    family = "prelu"
    summary = "max(0, x) + a min(0, x), learnable a"
    source = "baseline"
    param_names = ("a",)
    shapes = ("network", "layer", "channel", "neuron")
    presets = {"default": {"a": 0.25}, "as_relu": {"a": 0.0}, "as_identity": {"a": 1.0}}
    default_preset = "default"
    reductions = (
        Reduction("relu", "as_relu", F.relu),
        Reduction("identity", "as_identity", lambda x: x),
    )

    def __init__(self, *, param_shape: tuple[int, ...] = (1,)) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.full(param_shape, 0.25))

    def compute(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, x, broadcast(self.a, x) * x)
