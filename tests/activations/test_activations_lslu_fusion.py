"""LSLU fusion: the folded eval-only module equals the train-mode module in eval mode, or refuses clearly."""

from __future__ import annotations

import pytest
import torch

from aaf_search import activations
from aaf_search.activations import FusionError
from aaf_search.activations.lslu import LSLU, fusion_scale, series_shape


def _trained_lslu(
    theta: list[float], omega: list[float], *, channels: int = 4, dtype: torch.dtype = torch.float32
) -> LSLU:
    """An LSLU with a random kernel, random BN affine and running statistics from a few batches."""
    torch.manual_seed(0)
    module = activations.create("lslu", channels=channels, n=len(theta), init={"theta": theta, "omega": omega})
    assert isinstance(module, LSLU)
    module = module.to(dtype)
    with torch.no_grad():
        module.weight.normal_(0.0, 0.3)
        module.bn.weight.uniform_(0.5, 2.0)
        module.bn.bias.uniform_(-1.0, 1.0)
        for _ in range(5):
            module(torch.randn(8, channels, 6, 6, dtype=dtype) * 2 + 0.5)
    return module.eval()


FUSABLE = [
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], 1.0),
    ([0.5, 2.0, 1.5], [0.0, 0.0, 0.0], 1.5),
    ([2.0, 0.3], [0.0, 0.0], 0.6),
    # Non-zero ω can still fuse: the +0.5 keeps the value positive and the -0.5 removes it again.
    ([1.0, 1.0, 2.0], [0.5, -0.5, 0.0], 2.0),
    # A negative θ can zero the series: c = 0, the output is the folded BN bias.
    ([1.0, 1.0, -1.0], [0.0, 0.0, 0.0], 0.0),
    # -relu(1 - relu(x)) <= 0 everywhere, so the final ReLU zeroes it despite ω != 0: c = 0.
    ([1.0, -1.0, -1.0], [0.0, 1.0, 0.0], 0.0),
    ([3.0], [0.0], 3.0),
]
NOT_FUSABLE = [
    ([0.5, 2.0, 1.5], [0.1, -0.2, 0.3]),  # g(x <= 0) = 0.3
    ([-1.0, 1.0, 1.0], [0.5, 0.0, 0.0]),  # a decreasing step
    ([1.0, 1.0], [-0.5, 0.0]),  # relu(x - 0.5): a kink at x = 0.5
    ([2.0, 1.0], [-1.0, 0.0]),  # relu(2x - 1): g(0) = 0 but a kink at x = 0.5
]


@pytest.mark.parametrize(("theta", "omega", "scale"), FUSABLE)
def test_fused_module_equals_eval_module(theta: list[float], omega: list[float], scale: float) -> None:
    module = _trained_lslu(theta, omega)
    assert module.fusion_scale() == pytest.approx(scale)
    fused = module.fuse()
    assert not any(True for _ in fused.parameters())  # eval-only: buffers, nothing to train
    x = torch.randn(3, 4, 9, 7) * 3
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(fused(x), expected, atol=1e-5, rtol=1e-5)
    assert expected.abs().max() > 0.1  # a non-trivial check, not zeros against zeros


def test_fused_module_in_float64_is_exact() -> None:
    module = _trained_lslu([0.5, 2.0, 1.5], [0.0, 0.0, 0.0], dtype=torch.float64)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(module.fuse()(x), module(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("theta", "omega"), NOT_FUSABLE)
def test_unfusable_series_raise_fusion_error(theta: list[float], omega: list[float]) -> None:
    module = _trained_lslu(theta, omega)
    assert module.fusion_scale() is None
    with pytest.raises(FusionError, match="cannot be fused") as info:
        module.fuse()
    assert "theta=" in str(info.value) and "omega=0 and theta>0" in str(info.value)
    assert isinstance(info.value, activations.ActivationError)


def test_original_deploy_rule_would_be_wrong_where_we_refuse() -> None:
    # The original's deploy path is a single ReLU with the kernel scaled per channel by alphas; for a
    # trained θ/ω it differs from train mode. Our series is really not c·ReLU there:
    module = _trained_lslu([0.5, 2.0, 1.5], [0.1, -0.2, 0.3])
    x = torch.linspace(-3, 3, 61)
    g = module.elementwise(x).detach()
    relu = torch.relu(x)
    best_c = float((g * relu).sum() / (relu * relu).sum())
    assert (g - best_c * relu).abs().max() > 0.1


@pytest.mark.parametrize("seed", range(40))
def test_series_shape_matches_the_elementwise_series(seed: int) -> None:
    # The exact knot composition behind the fusion rule, checked against evaluation on random θ/ω.
    generator = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 5, (1,), generator=generator))
    theta = (torch.randn(n, generator=generator, dtype=torch.float64) * 1.5).tolist()
    omega = (torch.randn(n, generator=generator, dtype=torch.float64) * 0.5).tolist()
    shape = series_shape(theta, omega)
    x = torch.linspace(-5, 5, 2001, dtype=torch.float64)
    module = _lslu(n)
    with torch.no_grad():
        module.theta.copy_(torch.tensor(theta, dtype=torch.float64))
        module.omega.copy_(torch.tensor(omega, dtype=torch.float64))
    xs = torch.tensor(shape.knots, dtype=torch.float64)
    vs = torch.tensor(shape.values, dtype=torch.float64)
    right = torch.where(
        x > xs[-1], vs[-1] + shape.tail_slope * (x - xs[-1]), _interp(x.clamp(min=0, max=float(xs[-1])), xs, vs)
    )
    expected = torch.where(x <= 0, torch.full_like(x, shape.left), right)
    torch.testing.assert_close(module.elementwise(x).detach(), expected, atol=1e-9, rtol=1e-9)
    # And the fusion decision agrees with a brute-force check on the grid.
    c = fusion_scale(theta, omega)
    g = module.elementwise(x).detach()
    if c is not None:
        torch.testing.assert_close(g, c * torch.relu(x), atol=1e-9, rtol=1e-9)


def _lslu(n: int) -> LSLU:
    module = activations.create("lslu", channels=1, n=n).double()
    assert isinstance(module, LSLU)
    return module


def _interp(x: torch.Tensor, xs: torch.Tensor, vs: torch.Tensor) -> torch.Tensor:
    if len(xs) == 1:
        return torch.full_like(x, float(vs[0]))
    index = torch.searchsorted(xs, x, right=True).clamp(1, len(xs) - 1)
    x0, x1, v0, v1 = xs[index - 1], xs[index], vs[index - 1], vs[index]
    return v0 + (x - x0) / (x1 - x0) * (v1 - v0)
