"""Pointwise forward and hand-derived backward of every trainable element-wise family, one pair per family.

Each ``*_fwd(x, *params)`` is the family's formula as ONE expression of ``x`` and its parameters (already
broadcastable to ``x``, already in the working dtype); each ``*_bwd(gy, x, *params)`` recomputes what it
needs from ``x`` and returns ``(dL/dx, dL/dp_1, ...)``, the parameter gradients summed to each
parameter's own shape. Written so that ``torch.compile`` turns each into one fused loop (forward) and one
loop with reductions (backward); called as they are, they are the eager fallback of the fused path.

The derivatives follow autograd's conventions at the kinks so that fused and eager gradients agree
everywhere, not only away from kinks: ReLU passes the gradient where its output is > 0, ``clamp`` where
min < x < max (0 on a bound), ``torch.minimum`` splits it 1/2-1/2 on ties, ``abs`` has derivative
``sign(x)`` (0 at 0), ``softplus`` is the identity above its threshold 20. The formulas are checked against
autograd of the reference modules by ``tests/activations/test_fused.py`` (gradcheck in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Forward = Callable[..., Tensor]
Backward = Callable[..., tuple[Tensor, ...]]

LAMBDA_MIN = 1e-4  # APA's clamp on λ; equal to aaf_search.activations.apa.LAMBDA_MIN (a test checks it)
SOFTPLUS_THRESHOLD = 20.0  # F.softplus's default: above it softplus(u) = u and its derivative is 1
EPS_SOFTSIGN = 1e-8  # ScaledSoftSign's and NormLinComb's denominators, as in the original code
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


TWO_STAGE_SUM_DEVICES = ("cuda",)
"""Device types whose parameter-gradient sums all run in two stages (see :func:`sum_to`)."""

TWO_STAGE_PARTIAL_SUM_DEVICES = ("cpu",)
"""Device types whose sums run in two stages when the parameter keeps a dimension (one value per channel)."""


def reduced_dims(shape: Sequence[int], ndim: int) -> list[int]:
    """The dims of an ``ndim``-dim gradient that a parameter of ``shape`` (broadcast to it) sums over."""
    lead = ndim - len(shape)
    return [*range(lead), *(lead + i for i, size in enumerate(shape) if size == 1)]


def sums_in_two_stages(device_type: str, dims: Sequence[int], ndim: int) -> bool:
    """Whether :func:`sum_to` sums over ``dims`` of an ``ndim``-dim gradient in two stages (see there)."""
    if len(dims) < 2 or dims[0] != 0:
        return False
    partial = len(dims) < ndim
    return device_type in TWO_STAGE_SUM_DEVICES or (partial and device_type in TWO_STAGE_PARTIAL_SUM_DEVICES)


def sum_to(g: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """Sum an element-wise gradient ``g`` (the input's shape) to a broadcast parameter's ``shape``.

    The reduced dims come from ``shape`` alone (its leading missing dims and its size-1 dims), never
    from comparing with ``g``'s sizes: under ``torch.compile(dynamic=True)`` those are symbolic and a
    comparison would add a guard (and a recompile) per batch size.

    Two stages sum first over every reduced dim but the leading one, then over that one. On CUDA every
    such sum does: Inductor splits a reduction over many blocks only when its sizes are static; with
    symbolic sizes a single block would sum all N·C·H·W elements (10x slower than eager at 2^24
    elements). Two stages give one block per leading index, then a short sum of N partial sums.
    On the CPU only sums that keep a dimension do (a parameter per channel): in one stage Inductor
    parallelises them over the kept channels, 8 at a time, and each task walks the whole channels-last
    tensor for its 8 values (C/8 passes over memory, two tasks for 16 channels on any number of cores);
    per sample, the tasks are N times as many and read a sample's block while it is in cache.
    ``benchmarks/parameter_sums.py`` (the fused backward on the 4-conv network's four activation shapes,
    channels-last, 2 threads): per channel, two stages took 0.49x (NormLinComb) to 1.00x (CosLU) the
    one-stage time; per layer (a full sum) 1.14-1.49x, so full sums stay in one stage.
    """
    dims = reduced_dims(shape, g.ndim)
    if sums_in_two_stages(g.device.type, dims, g.ndim):
        g = g.sum(dims[1:], keepdim=True).sum(0, keepdim=True)
    elif dims:
        g = g.sum(dims, keepdim=True)
    return g.reshape(shape)


@dataclass(frozen=True)
class ExpRange:
    """Where exp of a dtype saturates: below ``zero`` it is exactly 0, above ``inf`` exactly inf."""

    zero: float  # below: exp rounds to 0 (under half the smallest subnormal)
    inf: float  # above: exp overflows to inf
    sigmoid_one: float  # below: 1 + exp rounds to 1, and exp is still a normal number


def _exp_range(dtype: torch.dtype) -> ExpRange:
    info = torch.finfo(dtype)
    return ExpRange(
        # ln of the smallest subnormal (tiny·eps), as a sum: with denormals flushed to zero
        # (torch.set_flush_denormal(True)) the product itself is 0
        zero=math.log(info.tiny) + math.log(info.eps) - 1.0,
        inf=math.log(info.max) + 1.0,
        # halfway between ln(eps/2) (1 + e rounds to 1 below it) and ln(tiny) (e turns subnormal below it)
        sigmoid_one=(math.log(info.eps / 2) + math.log(info.tiny)) / 2,
    )


EXP_RANGES = {dtype: _exp_range(dtype) for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def exp(v: Tensor) -> Tensor:
    """``torch.exp(v)``, value for value, with ``v`` clamped to the range where exp does not saturate.

    Why: the vectorised CPU exp takes a slow path on arguments far outside its finite range; a compiled
    sigmoid(65536·x) (AHAF's and LEAF's init as ReLU) ran 1.7x slower than sigmoid(x). Below
    ``zero`` and above ``inf`` the result is 0 or inf either way, so the clamp changes no value (NaN
    stays NaN).
    """
    bounds = EXP_RANGES[v.dtype]
    return torch.exp(v.clamp(bounds.zero, bounds.inf))


def sigmoid(t: Tensor) -> Tensor:
    """``torch.sigmoid(t)`` = 1/(1 + e^{-t}), value for value, without exp's slow path or subnormals.

    e^{-t} is clamped where 1 + e^{-t} rounds to 1 anyway (its lower end: e stays a normal number, as
    subnormal operands are slow too) and where it overflows to inf (σ = 0). In float16 and bfloat16 it
    is ``torch.sigmoid``: the three operations written out would each round to the narrow type when
    run eagerly, while ``torch.sigmoid`` rounds once.
    """
    if t.dtype in (torch.float16, torch.bfloat16):
        return torch.sigmoid(t)
    bounds = EXP_RANGES[t.dtype]
    return 1 / (1 + torch.exp((-t).clamp(bounds.sigmoid_one, bounds.inf)))


def _relu_mask(x: Tensor) -> Tensor:
    # F.relu's backward passes the gradient where the output is > 0 (so not at x = 0).
    return (x > 0).to(x.dtype)


# ---- Pishchik (seed 000) -------------------------------------------------------------------------------


def coslu_fwd(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """CosLU(x) = σ(x)·(x + a·cos(bx))."""
    return sigmoid(x) * (x + a * torch.cos(b * x))


def coslu_bwd(gy: Tensor, x: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    """∂/∂x = σ'(x)(x + a cos bx) + σ(x)(1 - ab sin bx); ∂/∂a = σ cos bx; ∂/∂b = -σ a x sin bx."""
    s = sigmoid(x)
    cos, sin = torch.cos(b * x), torch.sin(b * x)
    gx = gy * (s * (1 - s) * (x + a * cos) + s * (1 - a * b * sin))
    return gx, sum_to(gy * s * cos, a.shape), sum_to(-gy * s * a * x * sin, b.shape)


def sinlu_fwd(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """SinLU(x) = σ(x)·(x + a·sin(bx))."""
    return sigmoid(x) * (x + a * torch.sin(b * x))


def sinlu_bwd(gy: Tensor, x: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    """∂/∂x = σ'(x)(x + a sin bx) + σ(x)(1 + ab cos bx); ∂/∂a = σ sin bx; ∂/∂b = σ a x cos bx."""
    s = sigmoid(x)
    cos, sin = torch.cos(b * x), torch.sin(b * x)
    gx = gy * (s * (1 - s) * (x + a * sin) + s * (1 + a * b * cos))
    return gx, sum_to(gy * s * sin, a.shape), sum_to(gy * s * a * x * cos, b.shape)


def delu_fwd(x: Tensor, n: Tensor) -> Tensor:
    """DELU(x) = (n + 0.5)x + 1 - e^{-x} for x > 0, SiLU(x) = x/(1 + e^{-x}) otherwise.

    One exp serves both branches (the reference computes two). Its overflow to inf for x < -88 (fp32)
    only reaches the branch ``where`` does not select there, and SiLU's x/(1 + inf) is the right 0.
    """
    e = exp(-x)
    return torch.where(x > 0, (n + 0.5) * x + (1 - e), x / (1 + e))


def delu_bwd(gy: Tensor, x: Tensor, n: Tensor) -> tuple[Tensor, ...]:
    """∂/∂x = n + 0.5 + e^{-x} for x > 0, σ(x)(1 + x(1 - σ(x))) otherwise; ∂/∂n = x for x > 0, else 0."""
    positive = x > 0
    e = exp(-x)  # shared by both branches, as in delu_fwd
    s = 1 / (1 + e)
    dx = torch.where(positive, n + 0.5 + e, s * (1 + x * (1 - s)))
    return gy * dx, sum_to(torch.where(positive, gy * x, 0.0), n.shape)


# LinComb's bases: (F, F') pairs. F' at the kinks follows autograd (relu: 0 at 0; elu: e^x for x <= 0).
def _relu(x: Tensor) -> tuple[Tensor, Tensor]:
    return F.relu(x), _relu_mask(x)


def _sigmoid(x: Tensor) -> tuple[Tensor, Tensor]:
    s = 1 / (1 + exp(-x))  # written out, so the compiler shares exp(-x) with _tanh
    return s, s * (1 - s)


def _tanh(x: Tensor) -> tuple[Tensor, Tensor]:
    # tanh(x) = 2σ(2x) - 1 = 2/(1 + e^{-2x}) - 1 with e^{-2x} = exp(-x)²: the exp is the one _sigmoid
    # computes (the compiler eliminates the repeat), and the vectorised tanh costs 3x an exp on CPU.
    # Correct at ±inf (e² = inf gives -1); near 0 its absolute error is one rounding of 1.
    e = exp(-x)
    t = 2 / (1 + e * e) - 1
    return t, 1 - t * t


def _softsign(x: Tensor) -> tuple[Tensor, Tensor]:
    d = 1 / (1 + x.abs())
    return x * d, d * d


def _silu(x: Tensor) -> tuple[Tensor, Tensor]:
    s = sigmoid(x)
    return x * s, s * (1 + x * (1 - s))


def _gelu(x: Tensor) -> tuple[Tensor, Tensor]:
    cdf = 0.5 * (1 + torch.erf(x * INV_SQRT_2))
    return x * cdf, cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x)


def _identity(x: Tensor) -> tuple[Tensor, Tensor]:
    return x, torch.ones_like(x)


def _elu(x: Tensor) -> tuple[Tensor, Tensor]:
    negative = exp(x.clamp(max=0))
    return torch.where(x > 0, x, negative - 1), torch.where(x > 0, 1.0, negative)


def _softplus(x: Tensor) -> tuple[Tensor, Tensor]:
    return F.softplus(x), torch.where(x > SOFTPLUS_THRESHOLD, 1.0, sigmoid(x))


BASIS_DERIVATIVES: dict[str, Callable[[Tensor], tuple[Tensor, Tensor]]] = {
    "relu": _relu,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "softsign": _softsign,
    "silu": _silu,
    "gelu": _gelu,
    "identity": _identity,
    "elu": _elu,
    "softplus": _softplus,
}
"""Every basis of ``pishchik.BASES`` with its derivative (a test checks the two tables name the same bases)."""


def lincomb_kernels(bases: tuple[str, ...], normalised: bool) -> tuple[Forward, Backward]:
    """LinComb: y = Σ_i w_i F_i(x); NormLinComb: y = Σ_i w_i F_i(x) / (Σ_i w_i + 1e-8).

    The k weights arrive as k separate tensors ``w_i`` (views of the module's ``w[i]``). Gradients:
    LinComb ∂/∂x = Σ w_i F_i', ∂/∂w_i = F_i; NormLinComb divides both by D = Σw + 1e-8 and
    ∂/∂w_i = (F_i - y) / D.
    """
    fns = [BASIS_DERIVATIVES[name] for name in bases]

    def forward(x: Tensor, *w: Tensor) -> Tensor:
        total = w[0] * fns[0](x)[0]
        for i in range(1, len(fns)):
            total = total + w[i] * fns[i](x)[0]
        if normalised:
            total = total / (_weight_sum(w) + EPS_SOFTSIGN)
        return total

    def backward(gy: Tensor, x: Tensor, *w: Tensor) -> tuple[Tensor, ...]:
        values, slopes = zip(*(fn(x) for fn in fns), strict=True)
        slope = w[0] * slopes[0]
        for i in range(1, len(fns)):
            slope = slope + w[i] * slopes[i]
        if not normalised:
            return (gy * slope, *(sum_to(gy * v, wi.shape) for v, wi in zip(values, w, strict=True)))
        # ∂/∂w_i = Σ gy·(F_i - y)/D summed over the dims w_i broadcasts along, where w and D are constant:
        # with S_i = Σ gy·F_i that is (S_i - Σ_j w_j S_j / D) / D, so y is never formed per element.
        inv = 1 / (_weight_sum(w) + EPS_SOFTSIGN)
        sums = [sum_to(gy * v, wi.shape) for v, wi in zip(values, w, strict=True)]
        weighted = sums[0] * w[0]
        for i in range(1, len(fns)):
            weighted = weighted + w[i] * sums[i]
        return (gy * slope * inv, *((s - weighted * inv) * inv for s in sums))

    return forward, backward


def _weight_sum(w: tuple[Tensor, ...]) -> Tensor:
    total = w[0]
    for wi in w[1:]:
        total = total + wi
    return total


def relun_fwd(x: Tensor, n: Tensor) -> Tensor:
    """ReLUN(x) = min(max(0, x), n)."""
    return torch.minimum(F.relu(x), n)


def relun_bwd(gy: Tensor, x: Tensor, n: Tensor) -> tuple[Tensor, ...]:
    """∂/∂x = [relu(x) < n]·[x > 0], ∂/∂n = [n < relu(x)]; a tie relu(x) == n splits the gradient 1/2-1/2."""
    r = F.relu(x)
    tie = 0.5 * (r == n).to(x.dtype)
    gx = gy * ((r < n).to(x.dtype) + tie) * _relu_mask(x)
    return gx, sum_to(gy * ((n < r).to(x.dtype) + tie), n.shape)


def scaledsoftsign_fwd(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """ScaledSoftSign(x) = αx / (β + |x| + 1e-8)."""
    return alpha * x / (beta + x.abs() + EPS_SOFTSIGN)


def scaledsoftsign_bwd(gy: Tensor, x: Tensor, alpha: Tensor, beta: Tensor) -> tuple[Tensor, ...]:
    """With D = β + |x| + 1e-8: ∂/∂x = α(D - |x|)/D², ∂/∂α = x/D, ∂/∂β = -αx/D²."""
    inv = 1 / (beta + x.abs() + EPS_SOFTSIGN)
    gx = gy * alpha * (beta + EPS_SOFTSIGN) * inv * inv
    return gx, sum_to(gy * x * inv, alpha.shape), sum_to(-gy * alpha * x * inv * inv, beta.shape)


def shilu_fwd(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """ShiLU(x) = α·ReLU(x) + β."""
    return alpha * F.relu(x) + beta


def shilu_bwd(gy: Tensor, x: Tensor, alpha: Tensor, beta: Tensor) -> tuple[Tensor, ...]:
    """∂/∂x = α[x > 0], ∂/∂α = ReLU(x), ∂/∂β = 1."""
    return gy * alpha * _relu_mask(x), sum_to(gy * F.relu(x), alpha.shape), sum_to(gy, beta.shape)


# ---- Kostiuk (seeds 001/003) ---------------------------------------------------------------------------


def ahaf_fwd(x: Tensor, beta: Tensor, gamma: Tensor) -> Tensor:
    """AHAF(u) = β·u·σ(γu)."""
    return beta * x * sigmoid(gamma * x)


def ahaf_bwd(gy: Tensor, x: Tensor, beta: Tensor, gamma: Tensor) -> tuple[Tensor, ...]:
    """With s = σ(γu), s' = s(1 - s): ∂/∂u = β(s + γu s'), ∂/∂β = u s, ∂/∂γ = β u² s'."""
    s = sigmoid(gamma * x)
    ds = s * (1 - s)
    gx = gy * beta * (s + gamma * x * ds)
    return gx, sum_to(gy * x * s, beta.shape), sum_to(gy * beta * x * x * ds, gamma.shape)


def leaf_fwd(x: Tensor, p1: Tensor, p2: Tensor, p3: Tensor, p4: Tensor) -> Tensor:
    """LEAF(u) = (p1·u + p2)·σ(p3·u) + p4."""
    return (p1 * x + p2) * sigmoid(p3 * x) + p4


def leaf_bwd(gy: Tensor, x: Tensor, p1: Tensor, p2: Tensor, p3: Tensor, p4: Tensor) -> tuple[Tensor, ...]:
    """With s = σ(p3 u), s' = s(1 - s), v = p1 u + p2: ∂/∂u = p1 s + v p3 s'; ∂/∂p = (u s, s, v u s', 1)."""
    s = sigmoid(p3 * x)
    ds = s * (1 - s)
    v = p1 * x + p2
    gx = gy * (p1 * s + v * p3 * ds)
    gs = gy * s
    return gx, sum_to(gs * x, p1.shape), sum_to(gs, p2.shape), sum_to(gy * v * x * ds, p3.shape), sum_to(gy, p4.shape)


# ---- F-neuron ------------------------------------------------------------------------------------------


HAT_MAX_KNOTS = 34
"""Up to this many knots (count <= 32) F-neuron's fused kernels use the hat-function form, above it the gather form.

The hat form costs a few operations per knot and element, but vectorises and reduces the weight gradient
in registers; the gather form's lookups compile to scalar indirect loads and its weight gradient is a
scatter-add, which serialises. On the 2-core development machine (fp32, 4M elements) the hat form's
backward took 9.7 ms at 18 knots (the default) and 15.5 ms at 34, the gather form's 150-160 ms at any
count. The hat form's kernels are unrolled per knot, though, and compile longer as knots are added (cold
cache: 21 s at 34 knots, 34 s at 66, against 1.5 s for the gather form): larger counts take the gather form.
"""


def fneuron_kernels(count: int, interval: tuple[float, float]) -> tuple[Forward, Backward]:
    """F-neuron: y = w[j] + f·(w[j+1] - w[j]) with p = clamp((x - l)/r, 0, K-1), j = min(⌊p⌋, K-2), f = p - j.

    ``weights`` has shape ``(*rows, K)``, K = count + 2, r = (right - left)/(K - 1). Equivalently
    y = Σ_k w[k]·hat_k(p) with hat_k(p) = max(0, 1 - |p - k|) (the hat form). Gradients:
    ∂/∂x = (w[j+1] - w[j])/r where 0 < (x - l)/r < K-1 (clamp's exclusive mask), else 0;
    ∂/∂w[k] = Σ gy·hat_k(p) per row, i.e. 1 - f to w[j] and f to w[j+1] (the gather form accumulates
    those two with an index_add instead of K sums). Both forms agree with the reference at the knots.
    """
    k = count + 2
    left, right = interval
    radius = (right - left) / (k - 1)

    def scaled(x: Tensor) -> Tensor:
        # x in knot units from the left end: knot j sits at j
        return (x - left) / radius

    def clamp_mask(raw: Tensor, dtype: torch.dtype) -> Tensor:
        # where clamp(raw, 0, K-1) passes the gradient: strictly inside the interval
        return ((raw > 0) & (raw < k - 1)).to(dtype)

    def locate(x: Tensor, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raw = scaled(x)
        position = raw.clamp(0, k - 1)
        # NaN input -> segment 0 (its fraction stays NaN): a NaN index would be out of range on GPU.
        index = position.nan_to_num(0.0).floor().clamp(max=k - 2).long()
        fraction = position - index.to(position.dtype)
        rows = weights.shape[:-1]
        if len(rows) > 1 or rows[0] != 1:
            index = index + torch.arange(rows.numel(), device=x.device).view(rows) * k
        return raw, index, fraction

    def input_grad(gy: Tensor, raw: Tensor, index: Tensor, flat: Tensor) -> Tensor:
        return gy * (flat[index + 1] - flat[index]) * clamp_mask(raw, gy.dtype) / radius

    def hats(position: Tensor) -> list[Tensor]:
        return [F.relu(1 - (position - j).abs()) for j in range(k)]

    def hat_forward(x: Tensor, weights: Tensor) -> Tensor:
        basis = hats(scaled(x).clamp(0, k - 1))
        y = weights[..., 0] * basis[0]
        for j in range(1, k):
            y = y + weights[..., j] * basis[j]
        return y

    def hat_backward(gy: Tensor, x: Tensor, weights: Tensor) -> tuple[Tensor, ...]:
        raw = scaled(x)
        position = raw.clamp(0, k - 1)
        # The slope w[j+1] - w[j] of each element's segment j, picked by comparisons rather than looked up:
        # a lookup (weights[index]) compiles to scalar indirect loads on CPU; with it this backward took
        # 17.6 ms on 4M elements (18 knots), with the comparisons 9.7 ms. A NaN input matches no segment:
        # slope 0, where the clamp mask gives 0 anyway.
        segment = position.floor().clamp(max=k - 2)
        slope = torch.zeros_like(x)
        for j in range(k - 1):
            slope = torch.where(segment == j, weights[..., j + 1] - weights[..., j], slope)
        gx = gy * slope * clamp_mask(raw, gy.dtype) / radius
        rows = weights.shape[:-1]
        return gx, torch.stack([sum_to(gy * hat, rows) for hat in hats(position)], dim=-1)

    def gather_forward(x: Tensor, weights: Tensor) -> Tensor:
        _, index, fraction = locate(x, weights)
        flat = weights.reshape(-1)
        lower = flat[index]
        return lower + fraction * (flat[index + 1] - lower)

    def gather_backward(gy: Tensor, x: Tensor, weights: Tensor) -> tuple[Tensor, ...]:
        raw, index, fraction = locate(x, weights)
        flat = weights.reshape(-1)
        gx = input_grad(gy, raw, index, flat)
        index = index.reshape(-1)
        gy_upper = (gy * fraction).reshape(-1)
        gw = flat.new_zeros(flat.shape)
        gw = gw.index_add(0, index, gy.reshape(-1) - gy_upper).index_add(0, index + 1, gy_upper)
        return gx, gw.reshape(weights.shape)

    if k <= HAT_MAX_KNOTS:
        return hat_forward, hat_backward
    return gather_forward, gather_backward


# ---- APA / AGLU (seed 004) -----------------------------------------------------------------------------


def apa_fwd(z: Tensor, lam: Tensor, kappa: Tensor) -> Tensor:
    """APA(z) = exp(-softplus(log λ - κz)/λ), λ clamped at 1e-4."""
    lam = lam.clamp(min=LAMBDA_MIN)
    return exp(-F.softplus(torch.log(lam) - kappa * z) / lam)


def _apa_parts(z: Tensor, lam: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """APA and its element-wise partials (∂/∂z, ∂/∂λ, ∂/∂κ), plus the clamp's pass-through mask on λ.

    With λc = max(λ, 1e-4), u = log λc - κz, sp = softplus(u), σu = softplus'(u): y = exp(-sp/λc),
    ∂y/∂z = y κ σu/λc, ∂y/∂κ = y z σu/λc, ∂y/∂λc = y (sp - σu)/λc².
    softplus and its derivative share one exp: e = e^{-|u|}, sp = max(u, 0) + log1p(e), σu = 1/(1 + e)
    for u >= 0 and e/(1 + e) below (stable for any u; F.softplus's cut-off at u > 20 differs by < e^{-20}).
    """
    lam_c = lam.clamp(min=LAMBDA_MIN)
    inv = 1 / lam_c
    u = torch.log(lam_c) - kappa * z
    e = exp(-u.abs())
    sp = F.relu(u) + torch.log1p(e)
    sig = torch.where(u >= 0, 1.0, e) / (1 + e)
    y = exp(-sp * inv)
    dz = y * kappa * sig * inv
    dlam = y * (sp - sig) * inv * inv
    dkappa = y * z * sig * inv
    return y, dz, dlam, dkappa, (lam > LAMBDA_MIN).to(z.dtype)


def apa_bwd(gy: Tensor, z: Tensor, lam: Tensor, kappa: Tensor) -> tuple[Tensor, ...]:
    """See :func:`_apa_parts`; clamp passes the λ gradient where λ > 1e-4."""
    _, dz, dlam, dkappa, lam_mask = _apa_parts(z, lam, kappa)
    return gy * dz, sum_to(gy * dlam, lam.shape) * lam_mask, sum_to(gy * dkappa, kappa.shape)


def aglu_fwd(z: Tensor, lam: Tensor, kappa: Tensor) -> Tensor:
    """AGLU(z) = z·APA(z)."""
    return z * apa_fwd(z, lam, kappa)


def aglu_bwd(gy: Tensor, z: Tensor, lam: Tensor, kappa: Tensor) -> tuple[Tensor, ...]:
    """∂/∂z = APA + z ∂APA/∂z; ∂/∂λ, ∂/∂κ are z times APA's."""
    y, dz, dlam, dkappa, lam_mask = _apa_parts(z, lam, kappa)
    gz = gy * z
    return gy * (y + z * dz), sum_to(gz * dlam, lam.shape) * lam_mask, sum_to(gz * dkappa, kappa.shape)


# ---- LSLU (seed 002) -----------------------------------------------------------------------------------


def lslu_kernels(n: int) -> tuple[Forward, Backward]:
    """LSLU's element-wise series g(x) = ReLU(θ_n ReLU(… θ_1 ReLU(x) + ω_1 …) + ω_n) in one pass.

    ``theta`` and ``omega`` have shape (n,); the loop over n (a constant) unrolls into one expression.
    Backward recomputes the stages a_i = ReLU(h_{i-1}), h_i = θ_i a_i + ω_i (h_0 = x) and walks them
    back: δ_n = gy [h_n > 0], ∂/∂θ_i = Σ δ_i a_i, ∂/∂ω_i = Σ δ_i, δ_{i-1} = δ_i θ_i [h_{i-1} > 0].
    """

    def forward(x: Tensor, theta: Tensor, omega: Tensor) -> Tensor:
        h = x
        for i in range(n):
            h = theta[i] * F.relu(h) + omega[i]
        return F.relu(h)

    def backward(gy: Tensor, x: Tensor, theta: Tensor, omega: Tensor) -> tuple[Tensor, ...]:
        hs = [x]
        for i in range(n):
            hs.append(theta[i] * F.relu(hs[-1]) + omega[i])
        delta = gy * _relu_mask(hs[n])
        # Collected from stage n down to 1 and reversed at the end: appending, not assigning list items,
        # which some torch versions' dynamo cannot trace.
        dtheta: list[Tensor] = []
        domega: list[Tensor] = []
        for i in range(n - 1, -1, -1):
            dtheta.append(sum_to(delta * F.relu(hs[i]), ()))
            domega.append(sum_to(delta, ()))
            delta = delta * theta[i] * _relu_mask(hs[i])
        return delta, torch.stack(dtheta[::-1]), torch.stack(domega[::-1])

    return forward, backward


# ---- the table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSpec:
    """How to build one family's kernels from the module's static options (LinComb's bases, ...)."""

    build: Callable[[Hashable], tuple[Forward, Backward]]


def _fixed(forward: Forward, backward: Backward) -> KernelSpec:
    return KernelSpec(lambda _options: (forward, backward))


def _lincomb(options: Hashable) -> tuple[Forward, Backward]:
    assert isinstance(options, tuple)
    return lincomb_kernels(options, normalised=False)


def _normlincomb(options: Hashable) -> tuple[Forward, Backward]:
    assert isinstance(options, tuple)
    return lincomb_kernels(options, normalised=True)


def _fneuron(options: Hashable) -> tuple[Forward, Backward]:
    assert isinstance(options, tuple)
    count, interval = options
    return fneuron_kernels(count, interval)


def _lslu(options: Hashable) -> tuple[Forward, Backward]:
    assert isinstance(options, int)
    return lslu_kernels(options)


KERNELS: dict[str, KernelSpec] = {
    "coslu": _fixed(coslu_fwd, coslu_bwd),
    "sinlu": _fixed(sinlu_fwd, sinlu_bwd),
    "delu": _fixed(delu_fwd, delu_bwd),
    "lincomb": KernelSpec(_lincomb),
    "normlincomb": KernelSpec(_normlincomb),
    "relun": _fixed(relun_fwd, relun_bwd),
    "scaledsoftsign": _fixed(scaledsoftsign_fwd, scaledsoftsign_bwd),
    "shilu": _fixed(shilu_fwd, shilu_bwd),
    "ahaf": _fixed(ahaf_fwd, ahaf_bwd),
    "leaf": _fixed(leaf_fwd, leaf_bwd),
    "fneuron": KernelSpec(_fneuron),
    "apa": _fixed(apa_fwd, apa_bwd),
    "aglu": _fixed(aglu_fwd, aglu_bwd),
    "lslu": KernelSpec(_lslu),
}
"""Family name -> kernel builder; the families with a fused implementation."""
