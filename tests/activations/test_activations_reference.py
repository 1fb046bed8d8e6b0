"""Every reference row of SPEC-activations.md, reproduced in float64 to 1e-6, plus the documented fixes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from activation_cases import X_REF, build64, build64_as

from aaf_search import activations
from aaf_search.activations.apa import AGLU, apa
from aaf_search.activations.fneuron import FNeuron, interpolate, knots
from aaf_search.activations.lslu import LSLU
from aaf_search.activations.registry import InitSpec

# (family, init, options, expected at X_REF), in spec order.
REFERENCE: list[tuple[str, InitSpec, dict[str, Any], list[float]]] = [
    # 1.1 CosLU
    ("coslu", None, {}, [-0.189229, -0.123632, 0.142553, 0.5, 0.857489, 1.126051, 1.914681]),
    ("coslu", {"a": 0.5, "b": 2.0}, {}, [-0.119509, -0.324901, -0.086777, 0.25, 0.479388, 0.578945, 3.315039]),
    # 1.2 SinLU
    ("sinlu", None, {}, [-0.148970, -0.495248, -0.369773, 0.0, 0.609653, 1.346223, 2.992150]),
    # 1.3 DELU, 1.4 HELU
    ("delu", None, {}, [-0.142278, -0.268941, -0.188770, 0.0, 0.643469, 1.132121, 2.450213]),
    ("delu", {"n": 1.0}, {}, [-0.142278, -0.268941, -0.188770, 0.0, 1.143469, 2.132121, 5.450213]),
    ("helu", None, {}, [-0.142278, -0.268941, -0.188770, 0.0, 0.643469, 1.132121, 2.450213]),
    # 1.5 LinComb, 1.6 NormLinComb
    ("lincomb", None, {}, [-0.424407, -0.248163, -0.104477, 0.125, 0.479477, 0.748163, 1.424407]),
    (
        "normlincomb",
        {"w": [1.0, 2.0, 3.0, 4.0]},
        {},
        [-0.589031, -0.374690, -0.196460, 0.1, 0.446460, 0.674690, 1.089031],
    ),
    # 1.7 ReLUN
    ("relun", None, {}, [0, 0, 0, 0, 0.5, 1, 1]),
    ("relun", {"n": 2.0}, {}, [0, 0, 0, 0, 0.5, 1, 2]),
    # 1.8 ScaledSoftSign
    ("scaledsoftsign", None, {}, [-0.75, -0.5, -0.333333, 0, 0.333333, 0.5, 0.75]),
    ("scaledsoftsign", {"alpha": 2.0, "beta": 0.5}, {}, [-1.714286, -1.333333, -1.0, 0, 1.0, 1.333333, 1.714286]),
    # 1.9 ShiLU
    ("shilu", None, {}, [1, 1, 1, 1, 1.5, 2, 4]),
    ("shilu", {"alpha": 2.0, "beta": -0.5}, {}, [-0.5, -0.5, -0.5, -0.5, 0.5, 1.5, 5.5]),
    # 2.1 AHAF
    ("ahaf", "as_silu", {}, [-0.142278, -0.268941, -0.188770, 0, 0.311230, 0.731059, 2.857722]),
    ("ahaf", "as_relu", {}, [0, 0, 0, 0, 0.5, 1, 3]),
    ("ahaf", {"beta": 2.0, "gamma": 0.5}, {}, [-1.094553, -0.755081, -0.437823, 0, 0.562177, 1.244919, 4.905447]),
    # 2.2 LEAF
    ("leaf", "as_relu", {}, [0, 0, 0, 0, 0.5, 1, 3]),
    ("leaf", "as_silu", {}, [-0.142278, -0.268941, -0.188770, 0, 0.311230, 0.731059, 2.857722]),
    ("leaf", "as_tanh", {}, [-0.995055, -0.761594, -0.462117, 0, 0.462117, 0.761594, 0.995055]),
    ("leaf", "as_sigmoid", {}, [0.047426, 0.268941, 0.377541, 0.5, 0.622459, 0.731059, 0.952574]),
    (
        "leaf",
        {"p1": 0.5, "p2": 0.2, "p3": 1.5, "p4": -0.1},
        {},
        [-0.114283, -0.154728, -0.116041, 0.0, 0.205630, 0.472302, 1.581322],
    ),
    ("leaf", "custom", {}, [0, -0.000045, -0.003346, 0, 0.496654, 0.999955, 3.0]),
    # 2.3 F-neuron
    ("fneuron", "tanh", {}, [-0.994748, -0.744493, -0.443132, 0, 0.443132, 0.744493, 0.994748]),
    ("fneuron", "ramp", {"count": 12, "interval": (-1.0, 1.0)}, [-1, -1, -0.5, 0, 0.5, 1, 1]),
    ("fneuron", "constant", {}, [1, 1, 1, 1, 1, 1, 1]),
    # 4.1 APA
    ("apa", "as_sigmoid", {}, [0.047426, 0.268941, 0.377541, 0.5, 0.622459, 0.731059, 0.952574]),
    ("apa", {"lambda": 1e-4, "kappa": 1.0}, {}, [0.0, 0.066012, 0.192322, 0.367898, 0.545249, 0.692205, 0.951432]),
    ("apa", {"lambda": 0.5, "kappa": 2.0}, {}, [0.000024, 0.045375, 0.179677, 0.444444, 0.713413, 0.877259, 0.997526]),
    ("apa", {"lambda": 1.0, "kappa": -0.5}, {}, [0.817574, 0.622459, 0.562177, 0.5, 0.437823, 0.377541, 0.182426]),
    # 4.2 AGLU
    ("aglu", "as_silu", {}, [-0.142278, -0.268941, -0.188770, 0, 0.311230, 0.731059, 2.857722]),
    ("aglu", "as_gelu", {}, [-0.018071, -0.154204, -0.149612, 0, 0.350388, 0.845796, 2.981929]),
    ("aglu", {"lambda": 1e-4, "kappa": 1.0}, {}, [0.0, -0.066012, -0.096161, 0, 0.272625, 0.692205, 2.854296]),
    ("aglu", {"lambda": 0.5, "kappa": 1.0}, {}, [-0.024602, -0.179677, -0.150227, 0, 0.294377, 0.713413, 2.856036]),
    ("aglu", "as_relu", {}, [0, 0, 0, 0, 0.5, 1, 3]),
]

LSLU_SERIES = [
    ({"theta": [1.0, 1.0, 1.0], "omega": [0.0, 0.0, 0.0]}, [0, 0, 0, 0, 0.5, 1, 3]),
    ({"theta": [0.5, 2.0, 1.5], "omega": [0.1, -0.2, 0.3]}, [0.3, 0.3, 0.3, 0.3, 1.05, 1.8, 4.8]),
    ({"theta": [-1.0, 1.0, 1.0], "omega": [0.5, 0.0, 0.0]}, [0.5, 0.5, 0.5, 0.5, 0, 0, 0]),
]

X = torch.tensor(X_REF, dtype=torch.float64)


def _id(case: tuple[str, InitSpec, dict[str, Any], list[float]]) -> str:
    name, init, _, _ = case
    label = init if isinstance(init, str) or init is None else ",".join(str(v) for v in init.values())
    return f"{name}-{label}"


@pytest.mark.parametrize("case", REFERENCE, ids=[_id(c) for c in REFERENCE])
def test_reference_values(case: tuple[str, InitSpec, dict[str, Any], list[float]]) -> None:
    name, init, options, expected = case
    module = build64(name, init, **options)
    torch.testing.assert_close(module(X), torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("init", "expected"), LSLU_SERIES)
def test_lslu_series_reference(init: dict[str, list[float]], expected: list[float]) -> None:
    module = build64_as(LSLU, init)
    torch.testing.assert_close(module.elementwise(X), torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("init", "expected"), LSLU_SERIES)
def test_lslu_full_module_with_identity_kernel_is_the_series(
    init: dict[str, list[float]], expected: list[float]
) -> None:
    # The spec's recipe: centre-only kernel of 1, BN in eval with mean 0, var 1 - eps, γ = 1, β = 0.
    module = build64_as(LSLU, init, channels=2).eval()
    with torch.no_grad():
        module.weight.zero_()
        module.weight[:, :, module.n, module.n] = 1.0
        assert module.bn.running_mean is not None and module.bn.running_var is not None
        module.bn.running_mean.zero_()
        module.bn.running_var.fill_(1.0 - module.bn.eps)
    x = X.view(1, 1, 1, 7).expand(1, 2, 3, 7)
    out = module(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64).expand(1, 2, 3, 7), atol=1e-6, rtol=0)


def test_apa_gumbel_limit_and_true_gumbel_values() -> None:
    # Spec 4.1: with the 1e-4 clamp APA matches the Gumbel CDF to about 2e-5 (true values given there).
    out = build64("apa", "as_gumbel")(X)
    torch.testing.assert_close(
        out[1:4], torch.tensor([0.065988, 0.192296, 0.367879], dtype=torch.float64), atol=3e-5, rtol=0
    )
    # λ below the clamp behaves as 1e-4 exactly.
    assert torch.equal(build64("apa", {"lambda": 1e-9, "kappa": 1.0})(X), out)


def test_delu_and_helu_are_nan_free_for_very_negative_inputs() -> None:
    # The original gives NaN at -100 in fp32 (0 * inf); the fix selects with torch.where and clamps exp.
    x = torch.tensor([-1e4, -1000.0, -100.0, -89.0, -88.0, 100.0, 1e4], requires_grad=True)
    for name in ("delu", "helu"):
        out = activations.create(name)(x)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[:5], F.silu(x[:5].detach()))
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(grad).all()


def test_normlincomb_divides_by_the_plain_sum_of_weights() -> None:
    # Faithful to the code, not the README's norm: negative weights are allowed and only Σw divides.
    w = [2.0, -1.0, 0.5, 0.0]
    module = build64("normlincomb", {"w": w})
    bases = [F.relu(X), torch.sigmoid(X), torch.tanh(X), F.softsign(X)]
    expected = sum(wi * b for wi, b in zip(w, bases, strict=True)) / (sum(w) + 1e-8)
    torch.testing.assert_close(module(X), expected, atol=1e-12, rtol=0)


def test_lincomb_bases_option_and_one_parameter_per_basis() -> None:
    module = build64("lincomb", {"w": [0.5, 2.0, -1.0]}, bases=["silu", "elu", "identity"], shape="channel", channels=4)
    assert module.w.shape == (3, 4, 1, 1)
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(module(x), 0.5 * F.silu(x) + 2.0 * F.elu(x) - x)


def _fneuron_membership_sum(
    x: torch.Tensor, weights: torch.Tensor, count: int, left: float, right: float
) -> torch.Tensor:
    """The original's formula: left ramp, ``count`` triangles and right ramp, weighted and summed."""
    r = (right - left) / (count + 1)
    centres = [left + j * r for j in range(count + 2)]
    mfs = [1 - ((x - left) / r).clamp(0, 1)]
    mfs += [(1 - (x - centres[j]).abs() / r).clamp(min=0) for j in range(1, count + 1)]
    mfs.append(1 + ((x - right) / r).clamp(-1, 0))
    return (torch.stack(mfs, -1) * weights).sum(-1)


@pytest.mark.parametrize(
    ("count", "interval"), [(16, (-4.0, 4.0)), (12, (-1.0, 1.0)), (3, (-2.0, 5.0)), (0, (-1.0, 1.0))]
)
def test_fneuron_equals_the_membership_function_sum(count: int, interval: tuple[float, float]) -> None:
    torch.manual_seed(1)
    module = build64_as(FNeuron, "random", shape="neuron", input_shape=(3, 2), count=count, interval=interval)
    assert module.weights.shape == (3, 2, count + 2)
    x = torch.cat([torch.linspace(-7, 7, 50), torch.tensor(interval), knots(count, interval).float()]).double()
    x = x.view(-1, 1, 1).expand(-1, 3, 2)
    expected = _fneuron_membership_sum(x, module.weights.detach(), count, *interval)
    torch.testing.assert_close(module(x), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((4, 3, 5, 6), torch.channels_last),
        ((4, 3, 5, 6), torch.contiguous_format),
        ((2, 3, 2, 4, 5), torch.channels_last_3d),
    ],
)
def test_fneuron_lookup_keeps_the_layout_and_the_gradients(shape: tuple[int, ...], layout: torch.memory_format) -> None:
    # The knot weights are looked up with a gather in the input's memory order (its backward is ~10x
    # faster than indexing's on the CPU); a channels-last input must stay channels-last for the next conv.
    torch.manual_seed(2)
    x = (torch.randn(shape, dtype=torch.float64) * 3).contiguous(memory_format=layout).requires_grad_()
    weights = torch.randn(18, dtype=torch.float64, requires_grad=True)
    y = interpolate(x, weights, (-4.0, 4.0))
    assert y.stride() == x.stride()
    expected = _fneuron_membership_sum(x.detach(), weights.detach(), 16, -4.0, 4.0)
    torch.testing.assert_close(y, expected, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda x, w: interpolate(x, w, (-4.0, 4.0)), (x, weights))


def test_fneuron_hardtanh_init_is_hardtanh_not_hardsigmoid() -> None:
    # The original's HardTanh init used hardsigmoid; the weights are hardtanh at the knots now.
    module = build64_as(FNeuron, "hardtanh")
    torch.testing.assert_close(module.weights.view(-1), F.hardtanh(knots(16, (-4.0, 4.0))))
    assert module.weights.min() == -1.0


def test_fneuron_knots_are_exact_for_fragile_intervals() -> None:
    # arange(left, right + eps, step) can gain or lose a knot; linspace always gives count + 2.
    for count, interval in [(14, (-1.0, 1.0)), (18, (-0.3, 0.7)), (7, (-4.1, 4.1))]:
        k = knots(count, interval)
        assert k.numel() == count + 2
        assert k[0] == interval[0] and k[-1] == interval[1]


def test_aglu_lambda_gradient_matches_finite_differences() -> None:
    # The classification code's hand-written dλ drops a term; autograd must match finite differences and
    # the spec's autograd column (Σ over z in linspace(-3, 3, 13)).
    z = torch.linspace(-3, 3, 13, dtype=torch.float64)
    for lam, kappa, spec_value in [(1.0, 1.0, -1.2643), (0.5, 1.2, -0.8237), (0.1, 0.9, -0.6973)]:
        module = build64_as(AGLU, {"lambda": lam, "kappa": kappa})
        (grad,) = torch.autograd.grad(module(z).sum(), module.lam)
        h = 1e-6

        def total(value: float, kappa: float = kappa) -> float:
            return float((z * apa(z, torch.tensor(value, dtype=torch.float64), torch.tensor(kappa))).sum())

        finite = (total(lam + h) - total(lam - h)) / (2 * h)
        assert grad.item() == pytest.approx(finite, abs=1e-7)
        assert grad.item() == pytest.approx(spec_value, abs=1e-4)


def test_apa_log_space_equals_the_power_form() -> None:
    z = torch.linspace(-5, 5, 101, dtype=torch.float64)
    for lam, kappa in [(0.3, 0.7), (2.0, -1.5), (1e-3, 2.0)]:
        module = build64("apa", {"lambda": lam, "kappa": kappa})
        torch.testing.assert_close(module(z), (lam * torch.exp(-kappa * z) + 1) ** (-1 / lam), atol=1e-12, rtol=1e-9)
