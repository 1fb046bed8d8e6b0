"""Seed 000: the trainable activations of Pishchik, "Trainable Activations for Image Classification".

Paper: E. Pishchik, Preprints.org 2023, doi 10.20944/preprints202301.0463.v1; code
``epishchik/TrainableActivation`` (``activation.py``). The original builds ONE instance and puts it in
every activation site of the network, so its parameters are shared network-wide (shape ``"network"``);
``"layer"`` and ``"channel"`` are this package's extensions. Defaults are the original inits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.activations._common import Elementwise, broadcast, scalar_parameter
from aaf_search.activations.registry import (
    PARAM_SHAPES,
    ActivationError,
    InitValue,
    ParamShape,
    Reduction,
    register,
)

SOURCE = "seed 000: Pishchik 2023, Trainable Activations for Image Classification (epishchik/TrainableActivation)"
SHAPES: tuple[ParamShape, ...] = ("network", "layer", "channel")


def helu(x: Tensor) -> Tensor:
    """HELU(x) = SiLU(x) for x <= 0, 0.5x + (1 - e^{-x}) for x > 0 (DELU with n = 0)."""
    return _delu(x, 0.0)


def _delu(x: Tensor, n: Tensor | float) -> Tensor:
    # The original evaluates both branches everywhere and multiplies by masks: exp(-x) overflows to inf
    # for x < -88 (fp32) and 0 * inf = NaN. ``torch.where`` selects instead of multiplying, and the exp
    # argument is clamped to <= 0 so neither branch (nor its gradient) ever sees an inf. For x > 0,
    # |e^{-x} - 1| = 1 - e^{-x}, which is what is computed.
    positive = x > 0
    decay = torch.exp(-x.clamp(min=0))
    right = (n + 0.5) * x + (1 - decay)
    return torch.where(positive, right, F.silu(x))


class _SeedActivation(Elementwise):
    source: ClassVar[str] = SOURCE
    shapes: ClassVar[tuple[ParamShape, ...]] = SHAPES


@register
class CosLU(_SeedActivation):
    """CosLU(x) = σ(x) · (x + a·cos(b·x)); a = b = 1 at init, so CosLU(0) = 0.5 (not zero-centred)."""

    family = "coslu"
    summary = "sigmoid(x) * (x + a cos(b x))"
    param_names = ("a", "b")
    presets = {"default": {"a": 1.0, "b": 1.0}, "as_silu": {"a": 0.0, "b": 1.0}}
    default_preset = "default"
    reductions = (Reduction("silu", "as_silu", F.silu),)

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.a = scalar_parameter(param_shape, 1.0)
        self.b = scalar_parameter(param_shape, 1.0)

    def compute(self, x: Tensor) -> Tensor:
        a, b = broadcast(self.a, x), broadcast(self.b, x)
        return torch.sigmoid(x) * (x + a * torch.cos(b * x))


@register
class SinLU(_SeedActivation):
    """SinLU(x) = σ(x) · (x + a·sin(b·x)); a = b = 1 at init. In the code and configs, not the README."""

    family = "sinlu"
    summary = "sigmoid(x) * (x + a sin(b x))"
    param_names = ("a", "b")
    presets = {"default": {"a": 1.0, "b": 1.0}, "as_silu": {"a": 0.0, "b": 1.0}}
    default_preset = "default"
    reductions = (
        Reduction("silu", "as_silu", F.silu),
        Reduction("silu (b=0)", {"a": 1.0, "b": 0.0}, F.silu),
    )

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.a = scalar_parameter(param_shape, 1.0)
        self.b = scalar_parameter(param_shape, 1.0)

    def compute(self, x: Tensor) -> Tensor:
        a, b = broadcast(self.a, x), broadcast(self.b, x)
        return torch.sigmoid(x) * (x + a * torch.sin(b * x))


@register
class DELU(_SeedActivation):
    """DELU(x) = SiLU(x) for x <= 0, (n + 0.5)·x + |e^{-x} - 1| for x > 0; n = 0 at init (= HELU).

    Fix: the original multiplies both branches by masks and returns NaN for x < -88 in fp32; this
    version selects with ``torch.where`` and clamps the exp argument (see ``_delu``).
    """

    family = "delu"
    summary = "silu(x) if x <= 0 else (n + 0.5) x + 1 - exp(-x)"
    param_names = ("n",)
    presets = {"default": {"n": 0.0}}
    default_preset = "default"
    reductions = (Reduction("helu", {"n": 0.0}, helu),)

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.n = scalar_parameter(param_shape, 0.0)

    def compute(self, x: Tensor) -> Tensor:
        return _delu(x, broadcast(self.n, x))


@register
class HELU(_SeedActivation):
    """HELU(x) = DELU(x) with n fixed at 0; no parameters (NaN-free like DELU)."""

    family = "helu"
    summary = "silu(x) if x <= 0 else 0.5 x + 1 - exp(-x)"
    shapes = PARAM_SHAPES  # no parameters: any shape asked for is the same function, as for the baselines

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()

    def compute(self, x: Tensor) -> Tensor:
        return helu(x)


def _identity(x: Tensor) -> Tensor:
    return x


BASES: Mapping[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softsign": F.softsign,
    "silu": F.silu,
    "gelu": F.gelu,
    "identity": _identity,
    "elu": F.elu,
    "softplus": F.softplus,
}
"""The basis functions LinComb and NormLinComb can combine (the originals' configs use the first four)."""

DEFAULT_BASES = ("relu", "sigmoid", "tanh", "softsign")


def _one_hot(index: int, k: int = len(DEFAULT_BASES)) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(k)]


class _Combination(_SeedActivation):
    """Shared parts of LinComb and NormLinComb: the bases option and the ``w`` parameter.

    ``w`` is ONE parameter of shape ``(k, *param_shape)`` (the original keeps k 0-dim parameters
    ``my_weight{i}``), so ``w[i]`` broadcasts like any other parameter and a state dict has one entry.
    It starts at 1/k as in the original; the ``"default"`` preset is empty because 1/k depends on the
    ``bases`` option, so the constructor writes it.
    """

    param_names = ("w",)
    presets = {"default": {}, "random": {"w": ("uniform", 0.0, 1.0)}}
    default_preset = "default"
    option_names = ("bases",)

    def __init__(self, *, param_shape: tuple[int, ...], bases: Sequence[str] = DEFAULT_BASES) -> None:
        super().__init__()
        if isinstance(bases, str) or not bases:
            raise ActivationError(f"activation '{self.family}': bases must be a non-empty list of {', '.join(BASES)}")
        unknown = [b for b in bases if b not in BASES]
        if unknown:
            raise ActivationError(
                f"activation '{self.family}' has no basis {', '.join(unknown)}; choose from: {', '.join(BASES)}"
            )
        self.bases: tuple[str, ...] = tuple(bases)
        k = len(self.bases)
        self.w = nn.Parameter(torch.full((k, *param_shape), 1.0 / k))

    def init_parameter(self, name: str, value: InitValue) -> None:
        # A length-k sequence gives one weight per basis: align it with dim 0 of w. The registry's
        # default would align it with the last dim, which is a per-channel/neuron axis here.
        if name == "w" and not _is_tagged(value):
            tensor = torch.as_tensor(value, dtype=self.w.dtype)
            if tensor.ndim == 1 and tensor.shape[0] == self.w.shape[0]:
                value = tensor.view(-1, *([1] * (self.w.ndim - 1))).expand_as(self.w)
        super().init_parameter(name, value)

    def fused_options(self) -> tuple[str, ...]:
        return self.bases

    def fused_params(self, x: Tensor) -> list[Tensor]:
        # One broadcast view per basis weight; autograd assembles their gradients back into w.
        return [broadcast(self.w[i], x) for i in range(len(self.bases))]

    def weighted_sum(self, x: Tensor) -> Tensor:
        total = broadcast(self.w[0], x) * BASES[self.bases[0]](x)
        for i in range(1, len(self.bases)):
            total = total + broadcast(self.w[i], x) * BASES[self.bases[i]](x)
        return total

    def extra_repr(self) -> str:
        return f"bases={list(self.bases)}"


def _is_tagged(value: InitValue) -> bool:
    return isinstance(value, tuple) and bool(value) and isinstance(value[0], str)


@register
class LinComb(_Combination):
    """LinComb(x) = Σ_i w_i · F_i(x) over the bases (default relu, sigmoid, tanh, softsign), w_i = 1/k."""

    family = "lincomb"
    summary = "sum_i w_i F_i(x), F = relu, sigmoid, tanh, softsign"
    reductions = (
        Reduction("relu", {"w": _one_hot(0)}, F.relu),
        Reduction("sigmoid", {"w": _one_hot(1)}, torch.sigmoid),
        Reduction("tanh", {"w": _one_hot(2)}, torch.tanh),
        Reduction("softsign", {"w": _one_hot(3)}, F.softsign),
        Reduction("gelu", {"w": [0.0, 1.0]}, F.gelu, options={"bases": ("silu", "gelu")}),
    )

    def compute(self, x: Tensor) -> Tensor:
        return self.weighted_sum(x)


@register
class NormLinComb(_Combination):
    """NormLinComb(x) = (Σ_i w_i F_i(x)) / (Σ_i w_i + 1e-8), faithful to the code.

    The README writes ‖W‖, but the code divides by the plain sum of the (unconstrained) weights, which
    can blow up or flip sign when Σw → 0. Kept as in the code so results reproduce; at init Σw = 1, so
    it starts identical to LinComb. The output is invariant to scaling all weights.
    """

    family = "normlincomb"
    summary = "sum_i w_i F_i(x) / (sum_i w_i + 1e-8), F = relu, sigmoid, tanh, softsign"
    reductions = (
        Reduction("relu", {"w": _one_hot(0)}, F.relu),
        Reduction("tanh", {"w": _one_hot(2)}, torch.tanh),
        Reduction("relu (scaled weights)", {"w": [3.0, 0.0, 0.0, 0.0]}, F.relu),
    )

    def compute(self, x: Tensor) -> Tensor:
        return self.weighted_sum(x) / (broadcast(self.w.sum(0), x) + 1e-8)


@register
class ReLUN(_SeedActivation):
    """ReLUN(x) = min(max(0, x), n), n = 1 at init (a "ReLU1"); n is unconstrained (n < 0 gives a constant).

    ``torch.minimum`` splits the gradient at ties exactly like the original's ``torch.min``.
    """

    family = "relun"
    summary = "min(max(0, x), n)"
    param_names = ("n",)
    presets = {"default": {"n": 1.0}, "relu6": {"n": 6.0}}
    default_preset = "default"
    reductions = (
        Reduction("relu6", "relu6", F.relu6),
        Reduction("hardtanh(0, 1)", "default", lambda x: F.hardtanh(x, 0.0, 1.0)),
    )

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.n = scalar_parameter(param_shape, 1.0)

    def compute(self, x: Tensor) -> Tensor:
        return torch.minimum(F.relu(x), broadcast(self.n, x))


@register
class ScaledSoftSign(_SeedActivation):
    """ScaledSoftSign(x) = α·x / (β + |x| + 1e-8), α = β = 1 at init (= softsign).

    β is unconstrained as in the original: if training drives β <= 0 there is a pole at |x| = -β that
    the 1e-8 does not prevent.
    """

    family = "scaledsoftsign"
    summary = "alpha x / (beta + |x| + 1e-8)"
    param_names = ("alpha", "beta")
    presets = {"default": {"alpha": 1.0, "beta": 1.0}}
    default_preset = "default"
    reductions = (Reduction("softsign", {"alpha": 1.0, "beta": 1.0}, F.softsign),)

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.alpha = scalar_parameter(param_shape, 1.0)
        self.beta = scalar_parameter(param_shape, 1.0)

    def compute(self, x: Tensor) -> Tensor:
        return broadcast(self.alpha, x) * x / (broadcast(self.beta, x) + x.abs() + 1e-8)


@register
class ShiLU(_SeedActivation):
    """ShiLU(x) = α·ReLU(x) + β, α = β = 1 at init, so it starts as ReLU(x) + 1 (not ReLU)."""

    family = "shilu"
    summary = "alpha relu(x) + beta"
    param_names = ("alpha", "beta")
    presets = {"default": {"alpha": 1.0, "beta": 1.0}, "as_relu": {"alpha": 1.0, "beta": 0.0}}
    default_preset = "default"
    reductions = (Reduction("relu", "as_relu", F.relu),)

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.alpha = scalar_parameter(param_shape, 1.0)
        self.beta = scalar_parameter(param_shape, 1.0)

    def compute(self, x: Tensor) -> Tensor:
        return broadcast(self.alpha, x) * F.relu(x) + broadcast(self.beta, x)
