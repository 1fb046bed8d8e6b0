"""Seeds 001/003: the F-neuron activation of Bodyanskiy & Kostiuk (``adaptive_afs/fuzzy/f_neuron_act.py``).

The original sums ``count + 2`` fuzzy membership functions (a left ramp, ``count`` triangles, a right
ramp) evenly spaced on ``[left, right]``, each weighted by a learnable weight. Those functions form a
partition of unity with unit-spaced peaks, so the sum is exactly the piecewise-linear interpolation of
the weights placed at the knots, held constant outside the interval. That is how it is computed here:
two gathers instead of ``count + 2`` membership tensors (same values and gradients, less memory).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.activations._common import Elementwise
from aaf_search.activations.registry import ActivationError, InitValue, ParamShape, Reduction, register

KNOT_FUNCTIONS: Mapping[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hardsigmoid": F.hardsigmoid,
    # Fixed: the original's HardTanh init calls F.hardsigmoid (a copy-paste bug); this is hardtanh.
    "hardtanh": F.hardtanh,
}
"""Presets that place w_j = f(c_j) on the actual knots c_j of the configured interval."""


def knots(count: int, interval: tuple[float, float], dtype: torch.dtype = torch.float64) -> Tensor:
    """The ``count + 2`` evenly spaced knots on ``interval``.

    ``linspace`` gives exactly count + 2 points with exact end points; the original's
    ``arange(left, right + eps, step)`` can gain or lose a point to float rounding of the step.
    """
    return torch.linspace(interval[0], interval[1], count + 2, dtype=dtype)


def interpolate(x: Tensor, weights: Tensor, interval: tuple[float, float]) -> Tensor:
    """Piecewise-linear interpolation of ``weights[..., j]`` at evenly spaced knots on ``interval``.

    Constant extrapolation outside the interval. ``weights`` has shape ``(*param_shape, K)``, where
    ``param_shape`` is ``(1,)`` or the per-sample input shape; it broadcasts over the batch.
    """
    k = weights.shape[-1]
    left, right = interval
    radius = (right - left) / (k - 1)
    position = ((x - left) / radius).clamp(0, k - 1)
    # Segment index in [0, K-2], so x == right uses the last segment with fraction 1 (weight K-1).
    # A NaN input gets segment 0 (its fraction stays NaN, so the output is NaN): casting NaN to an
    # index would be out of range, a device-side assert on GPU instead of a NaN loss a pruner can see.
    index = position.detach().nan_to_num(0.0).floor().clamp(max=k - 2).long()
    fraction = position - index.to(position.dtype)
    # Index a flat view: each element's own row of K weights starts at (its neuron number) * K. Its
    # backward accumulates into the K weights per neuron, instead of a dense (batch, ..., K) gradient
    # that gathering from an expanded table would allocate.
    rows = weights.shape[:-1]
    if rows.numel() > 1:
        index = index + torch.arange(rows.numel(), device=x.device).view(rows) * k
    flat = weights.to(x.dtype).reshape(-1)
    lower = lookup(flat, index)
    upper = lookup(flat, index + 1)
    return lower + fraction * (upper - lower)


def lookup(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a 1-D ``table``, in ``index``'s memory layout (channels-last stays so).

    Written as a ``gather`` over the index in memory order because the backward of ``table[index]``
    is ``index_put_`` with accumulation, which on the CPU took 130 ms for 2M elements into 18 weights;
    ``gather``'s scatter-add took a tenth of that (see ``benchmarks/activations.py``, F-neuron eager).
    """
    strides = index.stride()
    order = sorted(range(index.ndim), key=lambda d: -strides[d])  # outermost dim first
    in_memory_order = index.permute(order)
    values = table.gather(0, in_memory_order.reshape(-1)).view(in_memory_order.shape)
    return values.permute([order.index(d) for d in range(index.ndim)])


@register
class FNeuron(Elementwise):
    """F-neuron activation: y(x) = Σ_j w_j·μ_j(x), j = 0..count+1, on knots c_j evenly spaced on [l, r].

    μ_0 is a left ramp, μ_1..μ_count triangles of half-width r = (right - left)/(count + 1), μ_{count+1}
    a right ramp: y is the linear interpolation of w at c_j, constant outside [left, right].
    Options: ``count`` (triangles, default 16) and ``interval`` (default (-4, 4)), as in leaf-aaf and
    aaf_identification. Parameter ``weights`` of shape ``(*param_shape, count + 2)``.
    Presets: ramp (w = linspace(-1, 1), ignoring the interval, the original F-neuron default), random
    U(-1, 1), constant (1), and tanh, sigmoid, hardsigmoid, hardtanh sampled at the knots.
    """

    family = "fneuron"
    summary = "piecewise-linear interpolation of count+2 weights on [left, right] (fuzzy MFs)"
    source = "seed 001/003: Bodyanskiy & Kostiuk, F-neuron (s-kostyuk/f-neuron-v2, adaptive_afs)"
    param_names = ("weights",)
    shapes: ClassVar[tuple[ParamShape, ...]] = ("network", "layer", "neuron")
    presets = {
        "ramp": {"weights": ("linspace", -1.0, 1.0)},
        "random": {"weights": ("uniform", -1.0, 1.0)},
        "constant": {"weights": 1.0},
        **{name: {"weights": ("knots", name)} for name in KNOT_FUNCTIONS},
    }
    default_preset = "ramp"
    option_names = ("count", "interval")
    reductions = (
        Reduction("hardtanh", "ramp", F.hardtanh, options={"count": 12, "interval": (-1.0, 1.0)}),
        Reduction("hardtanh (hardtanh init)", "hardtanh", F.hardtanh, options={"count": 9, "interval": (-1.0, 1.0)}),
        Reduction("one", "constant", torch.ones_like),
        # Knots at -3..3 step 1: hardsigmoid = relu6(x + 3)/6 is linear between them.
        Reduction("hardsigmoid", "hardsigmoid", F.hardsigmoid, options={"count": 5, "interval": (-3.0, 3.0)}),
    )

    def __init__(
        self,
        *,
        param_shape: tuple[int, ...],
        count: int = 16,
        interval: Sequence[float] = (-4.0, 4.0),
    ) -> None:
        super().__init__()
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ActivationError(f"activation 'fneuron': count must be an integer >= 0, got {count!r}")
        if len(interval) != 2 or not float(interval[0]) < float(interval[1]):
            raise ActivationError(
                f"activation 'fneuron': interval must be (left, right) with left < right, got {interval!r}"
            )
        self.count = count
        self.interval = (float(interval[0]), float(interval[1]))
        self.weights = nn.Parameter(torch.linspace(-1.0, 1.0, count + 2).expand(*param_shape, count + 2).clone())

    def init_parameter(self, name: str, value: InitValue) -> None:
        # The tagged presets depend on the knots, i.e. on the count/interval options of this instance.
        if name == "weights" and isinstance(value, tuple) and value and value[0] in ("knots", "linspace"):
            self.weights.copy_(self._tagged_values(value).expand_as(self.weights))
            return
        super().init_parameter(name, value)

    def _tagged_values(self, value: tuple[Any, ...]) -> Tensor:
        k = self.count + 2
        if value[0] == "linspace":
            return torch.linspace(float(value[1]), float(value[2]), k, dtype=self.weights.dtype)
        fn_name = str(value[1])
        if fn_name not in KNOT_FUNCTIONS:
            raise ActivationError(
                f"activation 'fneuron': no knot function '{fn_name}'; choose from: {', '.join(KNOT_FUNCTIONS)}"
            )
        return KNOT_FUNCTIONS[fn_name](knots(self.count, self.interval)).to(self.weights.dtype)

    def compute(self, x: Tensor) -> Tensor:
        return interpolate(x, self.weights, self.interval)

    def fused_options(self) -> tuple[int, tuple[float, float]]:
        return (self.count, self.interval)

    def fused_params(self, x: Tensor) -> list[Tensor]:
        # The (*rows, K) weight table as it is: the kernel gathers from it (it does not broadcast).
        return [self.weights]

    def extra_repr(self) -> str:
        return f"count={self.count}, interval={self.interval}"
