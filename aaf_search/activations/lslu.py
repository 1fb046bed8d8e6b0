"""Seed 002: LSLU, "Learnable Series Linear Units" (Feng et al., arXiv 2409.08283).

Code: ``vontran2021/Learnable-series-linear-units-LSLU`` (``LSLU.py``, class ``LearnableSerieslinearUnit``),
built on VanillaNet's series-informed activation. Train-mode forward, for series length n:

    g(x) = ReLU(θ_n·ReLU(… θ_1·ReLU(x) + ω_1 …) + ω_n)            (element-wise series)
    y    = BN(DWConv_{(2n+1)×(2n+1)}(g(x)))                        (per-channel spatial mix)

Deviations from the original, all documented:

- θ and ω have length n. The original allocates them with length ``dim`` (channels) but indexes them by
  series step, so entries n..dim-1 are dead (and only weight decay touches them); they are dropped.
- The original's ``switch_to_deploy`` is wrong: it drops the θ/ω series and multiplies each channel's
  kernel by ``alphas[c]``, so deploy ≠ train unless θ = 1, ω = 0. :meth:`LSLU.fuse` instead folds the
  series only when it equals c·ReLU(x) (checked exactly by composing the piecewise-linear stages) and
  raises :class:`FusionError` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.activations import fused
from aaf_search.activations.depthwise import depthwise_conv2d
from aaf_search.activations.registry import Activation, ActivationError, ParamShape, Reduction, register

BN_EPS = 1e-6  # the original's BatchNorm2d(dim, eps=1e-6)
KERNEL_STD = 0.02  # trunc_normal_(std=0.02), as in the original (and VanillaNet)
FUSION_RTOL = 1e-6  # relative tolerance when deciding that the series is exactly c·ReLU


class FusionError(ActivationError):
    """The learned LSLU series cannot be folded into the convolution (it is not c·ReLU(x))."""


@dataclass(frozen=True)
class SeriesShape:
    """The element-wise series g as a continuous piecewise-linear function.

    ``left`` is g(x) for every x <= 0 (constant there); on x >= 0, g interpolates ``values`` at the
    increasing ``knots`` (the first knot is 0) and continues with slope ``tail_slope`` after the last.
    """

    left: float
    knots: tuple[float, ...]
    values: tuple[float, ...]
    tail_slope: float


def series_shape(theta: list[float], omega: list[float]) -> SeriesShape:
    """Compose the stages h ↦ θ_i·ReLU(h) + ω_i and the final ReLU exactly, starting from h(x) = x.

    ReLU of a piecewise-linear function adds a knot where a segment (or the tail) crosses zero; the
    affine map keeps knots. For x <= 0 the first ReLU gives 0, so g is constant there and equals g(0).
    """
    knots, values, slope = [0.0], [0.0], 1.0
    for t, w in zip(theta, omega, strict=True):
        knots, values, slope = _relu(knots, values, slope)
        values = [t * v + w for v in values]
        slope *= t
    knots, values, slope = _relu(knots, values, slope)
    return SeriesShape(values[0], tuple(knots), tuple(values), slope)


def _relu(knots: list[float], values: list[float], slope: float) -> tuple[list[float], list[float], float]:
    new_knots, new_values = [knots[0]], [values[0]]
    for x0, v0, x1, v1 in zip(knots, values, knots[1:], values[1:], strict=False):
        if v0 * v1 < 0:  # the segment crosses zero strictly inside: a new kink
            new_knots.append(x0 + (x1 - x0) * v0 / (v0 - v1))
            new_values.append(0.0)
        new_knots.append(x1)
        new_values.append(v1)
    last = values[-1]
    if last * slope < 0:  # the tail crosses zero after the last knot
        new_knots.append(knots[-1] - last / slope)
        new_values.append(0.0)
    # After the last zero crossing the tail is either rising (kept) or clipped to the constant 0.
    tail = slope if slope > 0 else 0.0
    return new_knots, [max(v, 0.0) for v in new_values], tail


def fusion_scale(theta: list[float], omega: list[float], rtol: float = FUSION_RTOL) -> float | None:
    """The c with g(x) = c·ReLU(x) for all x, or None when the series is not of that form.

    Exact condition (from :func:`series_shape`): g(0) = 0 and every knot value on x > 0 lies on the
    line c·x with c the tail slope. Sufficient, and the common case: ω = 0 and θ > 0, c = Πθ_i.
    """
    shape = series_shape(theta, omega)
    c = shape.tail_slope

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))

    if not close(shape.left, 0.0):
        return None
    if all(close(v, c * x) for x, v in zip(shape.knots, shape.values, strict=True)):
        return c
    return None


@register
class LSLU(Activation):
    """LSLU: y = BN(DWConv(g(x))), g the θ/ω ReLU series (see the module docstring).

    Parameters ``theta`` (init 1) and ``omega`` (init 0), each of length n (option ``n``, default 3);
    the depthwise kernel ``weight`` of shape (C, 1, 2n+1, 2n+1) (trunc-normal, std 0.02) and the
    BatchNorm2d(C, eps=1e-6) are part of the module. It needs ``channels`` and 4-D (N, C, H, W) input.
    """

    family = "lslu"
    summary = "BN(dwconv_{2n+1}(relu(theta_n relu(... theta_1 relu(x) + omega_1 ...) + omega_n)))"
    source = "seed 002: Feng et al. 2024, LSLU, arXiv 2409.08283 (vontran2021/Learnable-series-linear-units-LSLU)"
    param_names = ("theta", "omega")
    structural_params = ("weight", "bn.weight", "bn.bias")
    shapes: ClassVar[tuple[ParamShape, ...]] = ("layer",)
    presets = {"default": {"theta": 1.0, "omega": 0.0}}
    default_preset = "default"
    option_names = ("n",)
    needs_channels = True
    reductions = (Reduction("relu", "default", F.relu, via="elementwise"),)

    def __init__(self, *, param_shape: tuple[int, ...], channels: int, n: int = 3) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ActivationError(f"activation 'lslu': the series length n must be an integer >= 1, got {n!r}")
        self.n = n
        self.channels = channels
        self.theta = nn.Parameter(torch.ones(n))
        self.omega = nn.Parameter(torch.zeros(n))
        size = 2 * n + 1
        self.weight = nn.Parameter(torch.empty(channels, 1, size, size))
        nn.init.trunc_normal_(self.weight, std=KERNEL_STD)
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS)

    def elementwise(self, x: Tensor) -> Tensor:
        """The element-wise series g(x) alone (any input shape).

        With the fused implementation selected, the n ReLU-affine stages are one pass (one compiled
        kernel forward, one backward) that keeps only ``x`` for backward, instead of 2n + 1 tensors.
        """
        if fused.uses_fused(self.family, x, options=self.n):
            if torch.is_grad_enabled():
                self.trained_fused = True
            return fused.apply(self.family, self.n, x, [self.theta, self.omega])
        theta, omega = self.theta.to(x.dtype), self.omega.to(x.dtype)
        for i in range(self.n):
            x = theta[i] * F.relu(x) + omega[i]
        return F.relu(x)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        # Compute in the module's dtype: conv and BatchNorm kernels want one dtype for input and
        # parameters; the output is cast back, so a bf16 input to an fp32 module still returns bf16.
        h = self.elementwise(x.to(self.weight.dtype))
        # The depthwise convolution in channels-last format: oneDNN's NCHW depthwise kernel was 5x slower
        # on CPU (and took seconds per step for some shapes). A no-op when the network already runs
        # channels-last (as trials do); the output stays channels-last either way.
        h = h.contiguous(memory_format=torch.channels_last)
        h = depthwise_conv2d(h, self.weight)
        return self.bn(h).to(x.dtype)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ActivationError(
                f"activation 'lslu' works only on 4-D (N, C, H, W) input (it contains a depthwise conv); "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.channels:
            raise ActivationError(
                f"activation 'lslu' was built for {self.channels} channels, got input {tuple(x.shape)}"
            )

    def fusion_scale(self) -> float | None:
        """c such that the series is c·ReLU(x), or None (see :func:`fusion_scale`)."""
        return fusion_scale(self.theta.detach().double().tolist(), self.omega.detach().double().tolist())

    def fuse(self) -> FusedLSLU:
        """An eval-only module equal to this one in eval mode: ReLU, then one depthwise conv with bias.

        BatchNorm (running statistics) is folded into the kernel and a bias, and the series into a
        scale c of the kernel. Raises :class:`FusionError` when the series is not c·ReLU(x).
        """
        theta, omega = self.theta.detach().double().tolist(), self.omega.detach().double().tolist()
        c = fusion_scale(theta, omega)
        if c is None:
            shape = series_shape(theta, omega)
            raise FusionError(
                f"LSLU cannot be fused: with theta={_fmt(theta)}, omega={_fmt(omega)} the element-wise series "
                f"is not c*relu(x) (g(x<=0)={shape.left:.4g}, kinks at x={_fmt(list(shape.knots))}); fusion needs "
                "g(x)=0 for x<=0 and g linear for x>0, e.g. omega=0 and theta>0; keep the unfused module"
            )
        bn = self.bn
        assert bn.running_mean is not None and bn.running_var is not None
        with torch.no_grad():
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            weight = self.weight.double() * (scale * c).view(-1, 1, 1, 1)
            bias = bn.bias.double() - bn.running_mean.double() * scale
        return FusedLSLU(weight.to(self.weight.dtype), bias.to(self.weight.dtype), self.n)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, n={self.n}"


class FusedLSLU(nn.Module):
    """Deploy form of a fusable LSLU: y = DWConv(ReLU(x); W', b'). Holds buffers, nothing to train."""

    weight: Tensor
    bias: Tensor

    def __init__(self, weight: Tensor, bias: Tensor, n: int) -> None:
        super().__init__()
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", bias.clone())
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x.to(self.weight.dtype)).contiguous(memory_format=torch.channels_last)  # see LSLU.forward
        return F.conv2d(h, self.weight, self.bias, padding=self.n, groups=self.weight.shape[0]).to(x.dtype)


def _fmt(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
