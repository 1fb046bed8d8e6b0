"""The fused activations: same values and gradients as the eager reference, less memory, one switch.

Most tests run the fused ``autograd.Function`` with compilation off (the same formulas, eagerly): that is
fast and checks every formula and every gradient. The few tests that compile are marked slow.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import pytest
import torch
from activation_cases import away_from
from fused_cases import CASES, DTYPE_TOLERANCE, assert_close_scaled, build_case, case_input, value_and_grads
from torch import Tensor
from torch.func import functional_call

from aaf_search import activations
from aaf_search.activations import fused, fused_kernels, kernel_store
from aaf_search.activations.apa import LAMBDA_MIN
from aaf_search.activations.fneuron import knots
from aaf_search.activations.lslu import LSLU
from aaf_search.activations.pishchik import BASES
from aaf_search.activations.registry import Activation, ActivationError, ParamShape

FAMILIES = fused.families()

SHAPE_CASES = [(name, mode) for name in FAMILIES for mode in activations.get(name).shapes]


@pytest.fixture(autouse=True)
def _restore_switch() -> Any:
    yield
    fused.set_implementation(None)


def test_every_trainable_family_but_prelu_has_a_fused_kernel() -> None:
    assert set(FAMILIES) == set(activations.names(trainable=True)) - {"prelu"}
    assert set(CASES) == set(FAMILIES)


def test_kernel_tables_match_the_families() -> None:
    assert set(fused_kernels.BASIS_DERIVATIVES) == set(BASES)
    assert fused_kernels.LAMBDA_MIN == LAMBDA_MIN


@pytest.mark.parametrize(("name", "mode"), SHAPE_CASES)
def test_fused_takes_the_fused_path_and_saves_only_input_and_parameters(name: str, mode: ParamShape) -> None:
    module = build_case(name, mode, torch.float32)
    x = case_input(name, torch.float32).requires_grad_(True)
    fused.set_implementation("fused", compile=False)
    saved: list[Tensor] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module.elementwise(x) if isinstance(module, LSLU) else module(x)
    assert type(out.grad_fn).__name__ == "_FusedFunctionBackward"
    assert saved[0] is x  # the input itself, not a cast copy or an intermediate
    storages = {t.untyped_storage().data_ptr() for t in saved[1:]}
    assert storages == {p.untyped_storage().data_ptr() for p in module.learned_parameters().values()}


@pytest.mark.parametrize(("name", "mode"), SHAPE_CASES)
def test_gradcheck_float64_and_equal_to_eager_autograd(name: str, mode: ParamShape) -> None:
    module = build_case(name, mode)
    x = case_input(name)
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]

    def fn(inp: Tensor, *values: Tensor) -> Tensor:
        if isinstance(module, LSLU):
            # Only the series is fused; gradchecking the conv and BatchNorm around it again costs 10 s.
            theta, omega = (values[names.index(n)] for n in ("theta", "omega"))
            return fused.apply("lslu", module.n, inp, [theta, omega])
        return functional_call(module, dict(zip(names, values, strict=True)), (inp,))

    fused.set_implementation("fused", compile=False)
    assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(True), *params), eps=1e-6, atol=1e-6, rtol=1e-4)

    eager_out, eager_grads = value_and_grads(module, x, "eager")
    fused_out, fused_grads = value_and_grads(module, x, "fused")
    torch.testing.assert_close(fused_out, eager_out, atol=1e-12, rtol=1e-12)
    for g_fused, g_eager in zip(fused_grads, eager_grads, strict=True):
        torch.testing.assert_close(g_fused, g_eager, atol=1e-10, rtol=1e-10)
    assert eager_out.abs().max() > 0.1  # non-trivial values, not zeros against zeros


@pytest.mark.parametrize("count", [6, fused_kernels.HAT_MAX_KNOTS - 1], ids=["hat-form", "gather-form"])
@pytest.mark.parametrize("mode", ["layer", "neuron"])
def test_fneuron_both_kernel_forms_equal_eager_on_and_between_knots(count: int, mode: ParamShape) -> None:
    # The hat form (up to HAT_MAX_KNOTS knots) and the gather form (more) follow the reference's
    # conventions at the knots themselves, where the interpolation switches segment.
    interval = (-2.0, 2.0)
    module = activations.create("fneuron", shape=mode, input_shape=(2, 4), count=count, interval=interval).double()
    with torch.no_grad():
        module.weights.uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(0))
    k = knots(count, interval)[:24]
    x = torch.cat([k, torch.linspace(-3.0, 3.0, 48 - len(k), dtype=torch.float64)]).view(6, 2, 4)
    eager_out, eager_grads = value_and_grads(module, x, "eager")
    fused_out, fused_grads = value_and_grads(module, x, "fused")
    torch.testing.assert_close(fused_out, eager_out, atol=1e-12, rtol=1e-12)
    for g_fused, g_eager in zip(fused_grads, eager_grads, strict=True):
        torch.testing.assert_close(g_fused, g_eager, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", ["apa", "aglu"])
def test_apa_lambda_gradient_on_the_clamp_bound_equals_eager(name: str) -> None:
    # clamp passes no gradient where λ sits exactly on its bound; the fused mask must agree.
    module = activations.create(name, shape="layer").double()
    with torch.no_grad():
        module.get_parameter("lam").fill_(LAMBDA_MIN)
    x = torch.linspace(-2.0, 2.0, 12, dtype=torch.float64).view(3, 4)
    _, eager_grads = value_and_grads(module, x, "eager")
    _, fused_grads = value_and_grads(module, x, "fused")
    for g_fused, g_eager in zip(fused_grads, eager_grads, strict=True):
        torch.testing.assert_close(g_fused, g_eager, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dtype", list(DTYPE_TOLERANCE), ids=str)
@pytest.mark.parametrize("params_fp32", [False, True], ids=["module-cast", "fp32-params"])
def test_values_and_grads_agree_in_low_precision(name: str, dtype: torch.dtype, params_fp32: bool) -> None:
    mode: ParamShape = "channel" if "channel" in activations.get(name).shapes else "layer"
    module = build_case(name, mode, torch.float32 if params_fp32 else dtype)
    x = case_input(name, dtype, seed=1)
    eager_out, eager_grads = value_and_grads(module, x, "eager")
    fused_out, fused_grads = value_and_grads(module, x, "fused")
    assert fused_out.dtype == dtype and fused_grads[0].dtype == dtype
    rel = DTYPE_TOLERANCE[dtype]
    assert_close_scaled(fused_out, eager_out, rel, "output")
    for i, (g_fused, g_eager) in enumerate(zip(fused_grads, eager_grads, strict=True)):
        assert g_fused.dtype == g_eager.dtype
        # Parameter gradients are sums over every element: bf16 rounding of the summands adds up.
        assert_close_scaled(g_fused, g_eager, rel if i == 0 else 2 * rel, f"gradient {i}")


@pytest.mark.parametrize("name", [n for n in FAMILIES if "channel" in activations.get(n).shapes])
def test_channel_parameters_broadcast_over_dim_1_for_any_rank(name: str) -> None:
    # Built knowing only the channel count: (C, 1, 1) parameters used on (N, C) and (N, C, L) inputs.
    module = activations.create(name, shape="channel", channels=3, **CASES[name][1])
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.rand(p.shape, generator=torch.Generator().manual_seed(2)))
    for shape in [(5, 3), (5, 3, 4), (2, 3, 4, 4)]:
        x = 2 * torch.randn(shape, generator=torch.Generator().manual_seed(3))
        eager_out, eager_grads = value_and_grads(module, x, "eager")
        fused_out, fused_grads = value_and_grads(module, x, "fused")
        torch.testing.assert_close(fused_out, eager_out)
        for g_fused, g_eager in zip(fused_grads, eager_grads, strict=True):
            torch.testing.assert_close(g_fused, g_eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "mode"), [("coslu", "layer"), ("leaf", "channel"), ("fneuron", "neuron")])
def test_two_stage_parameter_sums_equal_the_one_stage_sums(
    name: str, mode: ParamShape, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which sums run in two stages depends on the device and the parameter's shape; forced either way
    # on the CPU, the sums must agree.
    module = build_case(name, mode)
    x = case_input(name)
    monkeypatch.setattr(fused_kernels, "TWO_STAGE_PARTIAL_SUM_DEVICES", ())
    _, one_stage = value_and_grads(module, x, "fused")
    monkeypatch.setattr(fused_kernels, "TWO_STAGE_SUM_DEVICES", ("cpu",))
    _, two_stage = value_and_grads(module, x, "fused")
    for two, one in zip(two_stage, one_stage, strict=True):
        torch.testing.assert_close(two, one, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize(
    ("device", "param_shape", "two_stages"),
    [
        ("cpu", (1, 32, 1, 1), True),  # per channel: one stage walks memory once per 8 channels
        ("cpu", (1,), False),  # per layer: one full sum is faster
        ("cpu", (32, 8, 8), False),  # per neuron: a sum over the batch alone has no second stage
        ("cuda", (1,), True),  # symbolic sizes would sum everything in one block
        ("cuda", (1, 32, 1, 1), True),
    ],
)
def test_parameter_sums_take_two_stages_where_measured_faster(
    device: str, param_shape: tuple[int, ...], two_stages: bool
) -> None:
    dims = fused_kernels.reduced_dims(param_shape, 4)
    assert fused_kernels.sums_in_two_stages(device, dims, 4) is two_stages


def test_every_lincomb_basis_has_the_right_derivative() -> None:
    module = activations.create("lincomb", bases=tuple(BASES), init={"w": [0.1 * (i + 1) for i in range(len(BASES))]})
    module = module.double()
    x = away_from(3 * torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)), [0.0], 0.05)
    x = torch.cat([x, torch.tensor([[25.0, -25.0, 21.0]], dtype=torch.float64)])  # softplus past its threshold
    eager_out, eager_grads = value_and_grads(module, x, "eager")
    fused_out, fused_grads = value_and_grads(module, x, "fused")
    torch.testing.assert_close(fused_out, eager_out)
    for g_fused, g_eager in zip(fused_grads, eager_grads, strict=True):
        torch.testing.assert_close(g_fused, g_eager)


def test_kinks_follow_autograd_conventions() -> None:
    # Exactly at the kinks the derivative is a convention; fused must pick autograd's, not its own.
    x = torch.tensor([-1.0, 0.0, 0.5, 1.3, 2.0], dtype=torch.float64)
    for name, init in [("relun", {"n": 1.3}), ("shilu", {"alpha": 1.5, "beta": 0.2}), ("delu", {"n": 0.4})]:
        module = activations.create(name, init=init).double()
        eager_out, eager_grads = value_and_grads(module, x, "eager")
        fused_out, fused_grads = value_and_grads(module, x, "fused")
        torch.testing.assert_close(fused_out, eager_out, atol=0, rtol=0)
        for g_fused, g_eager in zip(fused_grads, eager_grads, strict=True):
            torch.testing.assert_close(g_fused, g_eager, atol=1e-15, rtol=0)
    # ReLUN at x == n: torch.minimum splits the gradient 1/2 to x and 1/2 to n.
    module = activations.create("relun", init={"n": 1.3}).double()
    tie = module.learned_parameters()["n"].clone()  # exactly n (1.3 in float32, widened)
    for impl in ("eager", "fused"):
        _, grads = value_and_grads(module, tie, impl)
        assert grads[0].item() == -0.5 and grads[1].item() == -0.5  # upstream gradient -1, split


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_clamped_exp_and_sigmoid_equal_the_unclamped_value_for_value(dtype: torch.dtype) -> None:
    # The kernels clamp exp's argument (for speed) only where the result saturates: every value, including
    # 0, 1, inf, the subnormals near the ends and NaN, must be the unclamped one.
    finite = torch.cat([torch.linspace(-800, 800, 64001, dtype=torch.float64), torch.tensor([-1e30, 1e30])])
    v = torch.cat([finite.to(dtype), torch.tensor([float("inf"), -float("inf"), float("nan")], dtype=dtype)])
    torch.testing.assert_close(fused_kernels.exp(v), torch.exp(v), atol=0, rtol=0, equal_nan=True)
    torch.testing.assert_close(fused_kernels.sigmoid(v), 1 / (1 + torch.exp(-v)), atol=0, rtol=0, equal_nan=True)
    subnormal = torch.exp(v[:-3])
    assert ((subnormal > 0) & (subnormal < torch.finfo(dtype).tiny)).any()  # the grid reaches exp's subnormals


def test_the_kernels_import_with_denormals_flushed_to_zero() -> None:
    # torch.set_flush_denormal(True) is a common CPU speed setting; the exp ranges are computed at import.
    probe = (
        "import torch\n"
        "assert torch.set_flush_denormal(True), 'no flush-to-zero here'\n"
        "from aaf_search.activations import fused_kernels\n"
        "print(fused_kernels.EXP_RANGES[torch.float32].zero)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if "no flush-to-zero here" in done.stderr:
        pytest.skip("this CPU cannot flush denormals")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == fused_kernels.EXP_RANGES[torch.float32].zero


def test_apa_lambda_below_the_clamp_gets_no_gradient() -> None:
    module = activations.create("apa", init={"lambda": 1e-6, "kappa": 0.7}).double()
    x = torch.linspace(-4, 4, 33, dtype=torch.float64)
    eager_out, eager_grads = value_and_grads(module, x, "eager")
    fused_out, fused_grads = value_and_grads(module, x, "fused")
    torch.testing.assert_close(fused_out, eager_out)
    assert fused_grads[1].item() == 0.0 == eager_grads[1].item()
    torch.testing.assert_close(fused_grads[2], eager_grads[2])


def test_lslu_fused_series_reductions_and_deploy_fusion() -> None:
    fused.set_implementation("fused", compile=False)
    module = activations.create("lslu", channels=3, n=3, init={"theta": [0.5, 2.0, 1.5], "omega": [0.0, 0.0, 0.0]})
    assert isinstance(module, LSLU)
    x = torch.linspace(-3, 3, 61).view(1, 1, 1, -1).expand(2, 3, 2, -1)
    # One pass of the series equals 1.5·ReLU here (ω = 0, Πθ = 1.5), with the fused path taken.
    series = module.elementwise(x)
    assert type(series.grad_fn).__name__ == "_FusedFunctionBackward"
    torch.testing.assert_close(series, 1.5 * torch.relu(x))
    with torch.no_grad():
        module.weight.normal_(0.0, 0.3)
        for _ in range(3):
            module(torch.randn(4, 3, 6, 6))
    module.eval()
    probe = 3 * torch.randn(2, 3, 7, 5)
    with torch.no_grad():
        torch.testing.assert_close(module.fuse()(probe), module(probe), atol=1e-5, rtol=1e-5)


def test_switch_reads_the_environment_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    fused.set_implementation(None)
    monkeypatch.setenv(fused.ENV_IMPL, "FUSED")
    assert fused.implementation() == "fused" and activations.implementation() == "fused"
    monkeypatch.delenv(fused.ENV_IMPL)
    assert fused.implementation() == "auto"
    monkeypatch.setenv(fused.ENV_IMPL, "fast")
    with pytest.raises(ActivationError, match="choose one of: eager, fused, auto"):
        fused.implementation()
    with pytest.raises(ActivationError, match="unknown activation implementation 'triton'"):
        activations.set_implementation("triton")
    activations.set_implementation("eager")  # the explicit choice wins over the (bad) environment
    assert fused.implementation() == "eager"
    monkeypatch.setenv(fused.ENV_COMPILE, "0")
    assert not fused.compile_enabled()
    monkeypatch.setenv(fused.ENV_COMPILE, "1")
    assert fused.compile_enabled()
    fused.set_implementation("fused", compile=False)
    assert not fused.compile_enabled()


def test_auto_has_a_measured_threshold_for_every_fused_family() -> None:
    assert set(fused.AUTO_FUSED[("cpu", True)]) == set(fused.families())
    # Inference: ReLUN's eager forward (one clamp) was not beaten up to 2^20 elements in one of two runs.
    assert set(fused.AUTO_FUSED_INFERENCE[("cpu", True)]) == set(fused.families()) - {"relun"}
    assert set(fused.AUTO_FUSED_INFERENCE) <= set(fused.AUTO_FUSED)
    # On CUDA only the families measured faster somewhere are listed; the rest stay eager.
    assert set(fused.AUTO_FUSED[("cuda", True)]) <= set(fused.families()) - {"lslu"}
    assert set(fused.AUTO_FUSED) == {(device, True) for device in fused.COMPILED_DEVICES}


def test_auto_uses_fused_only_where_it_was_measured_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.zeros(2, 3)
    fused.set_implementation("auto", compile=True)
    monkeypatch.setitem(fused.AUTO_FUSED, ("cpu", True), {"coslu": 6, "apa": 7})
    monkeypatch.setitem(fused.AUTO_FUSED_INFERENCE, ("cpu", True), {"coslu": 4, "apa": 9})
    assert fused.uses_fused("coslu", x)
    assert not fused.uses_fused("apa", x)  # fused only from 7 elements: smaller inputs run faster eagerly
    assert fused.uses_fused("apa", torch.zeros(7))
    assert not fused.uses_fused("silu", x)  # no kernel: always eager
    with torch.no_grad():  # inference: its own sizes, and only for a module that trained fused
        assert fused.uses_fused("coslu", x, trained_fused=True)
        assert not fused.uses_fused("coslu", x)  # would compile a kernel for this pass alone
        assert not fused.uses_fused("apa", torch.zeros(7), trained_fused=True)
        assert fused.uses_fused("apa", torch.zeros(9), trained_fused=True)
    fused.set_implementation("auto", compile=False)  # the measured speed-up needs compilation
    assert not fused.uses_fused("coslu", x)
    fused.set_implementation("fused", compile=False)
    assert fused.uses_fused("apa", x) and not fused.uses_fused("prelu", x)
    fused.set_implementation("eager")
    assert not fused.uses_fused("coslu", x)


def test_auto_has_a_measured_break_even_for_every_family_it_fuses_on_the_cpu() -> None:
    assert set(fused.AUTO_AMORTISED[("cpu", True)]) == set(fused.AUTO_FUSED[("cpu", True)])
    assert all(value > 0 for value in fused.AUTO_AMORTISED[("cpu", True)].values())


def test_a_plan_fuses_the_kernels_whose_calls_over_the_steps_repay_a_compilation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fused.set_implementation("auto", compile=False)
    monkeypatch.setitem(fused.AUTO_FUSED, ("cpu", False), {"coslu": 10, "lincomb": 10})
    monkeypatch.setitem(fused.AUTO_AMORTISED, ("cpu", False), {"coslu": 1000, "lincomb": 1000})
    coslu, two_bases, one_basis = ("coslu", None), ("lincomb", ("relu", "tanh")), ("lincomb", ("relu",))
    # Two CosLU calls of 60 and 40 elements share one kernel; the 8-element call runs eagerly by its size
    # and does not count. The two LinComb modules have different bases: two kernels, 60 elements each.
    calls = [(coslu, 60), (coslu, 40), (coslu, 8), (two_bases, 60), (one_basis, 60)]
    assert fused.planned_kernels(calls, 9, "cpu") == frozenset()
    assert fused.planned_kernels(calls, 10, "cpu") == {coslu}  # 100 x 10 = 1000; LinComb 600 each
    assert fused.planned_kernels(calls, 17, "cpu") == {coslu, two_bases, one_basis}
    monkeypatch.setitem(fused.AUTO_AMORTISED, ("cpu", False), {"coslu": 1000})  # LinComb not measured
    assert fused.planned_kernels(calls, 1, "cpu") == {two_bases, one_basis}  # the size rule alone


def test_a_trial_plan_counts_the_models_calls_and_leaves_its_state_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    fused.clear_cache()
    fused.set_implementation("auto", compile=False)
    monkeypatch.setitem(fused.AUTO_FUSED, ("cpu", False), {"coslu": 10, "lincomb": 10})
    monkeypatch.setitem(fused.AUTO_AMORTISED, ("cpu", False), {"coslu": 1000, "lincomb": 1000})
    first, second = activations.create("coslu"), activations.create("coslu")
    lincomb = activations.create("lincomb", bases=("relu", "tanh"))
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), first, torch.nn.Linear(8, 6), second, lincomb
    )
    batch = torch.randn(10, 4)  # per step: CosLU 80 + 60 elements, LinComb 60
    statistics = [model[1].running_mean.clone(), model[1].num_batches_tracked.clone()]
    with fused.trial_plan(model, batch, steps=10):
        assert model.training  # the counting pass ran in eval mode and gave the mode back
        torch.testing.assert_close([model[1].running_mean, model[1].num_batches_tracked], statistics)
        model(batch).sum().backward()
        assert first.trained_fused and second.trained_fused and not lincomb.trained_fused
    assert {key[:2] for key in fused._CACHE} == {("coslu", None)}
    model(batch).sum().backward()  # outside a plan, the size rule alone
    assert lincomb.trained_fused
    fused.clear_cache()


def test_a_trial_plan_changes_nothing_outside_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fused.AUTO_AMORTISED, ("cpu", False), {"coslu": 10**12})
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), activations.create("coslu"))
    for impl, fused_path in (("fused", True), ("eager", False)):
        fused.set_implementation(impl, compile=False)
        with fused.trial_plan(model, torch.randn(3, 4), steps=1):
            assert fused.uses_fused("coslu", torch.zeros(10**6), options=None) is fused_path
    fused.clear_cache()


def test_auto_evaluates_on_the_fused_path_only_modules_that_trained_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fused.clear_cache()
    fused.set_implementation("auto", compile=False)
    monkeypatch.setitem(fused.AUTO_FUSED, ("cpu", False), {"coslu": 40})
    monkeypatch.setitem(fused.AUTO_FUSED_INFERENCE, ("cpu", False), {"coslu": 40})
    trained = activations.create("coslu", shape="channel", channels=3)
    untrained = activations.create("coslu", shape="channel", channels=3)
    x = torch.randn(4, 3, 2, 2)  # 48 elements: fused in training and in inference
    trained(x.clone().requires_grad_(True)).sum().backward()
    trained(x[:1].clone().requires_grad_(True)).sum().backward()  # an epoch's last, smaller batch: eager
    assert trained.trained_fused and not untrained.trained_fused
    with torch.no_grad():
        trained(x)
        untrained(x)  # its kernel would be compiled for this pass alone: eager
    with torch.inference_mode():
        trained(x)  # a global state the compiled graph's guards check: eager, not a second compilation
    (kernel,) = fused._CACHE.values()
    assert kernel.calls == {"forward": 2, "backward": 1}
    fused.clear_cache()


def test_a_failing_compilation_falls_back_to_eager_with_a_warning() -> None:
    fused.clear_cache()
    fused.set_implementation("fused", compile=False)
    module = activations.create("coslu", init={"a": 0.5, "b": 2.0})
    x = torch.randn(4, 3)
    expected = module(x)
    kernel = fused.get_kernel("coslu", None, x.device, x.dtype, torch.float32)

    def broken(*args: Tensor) -> Tensor:
        raise RuntimeError("no C++ compiler")

    kernel.compiled_forward = broken
    with pytest.warns(RuntimeWarning, match="no C.. compiler.*eager formulas"):
        torch.testing.assert_close(module(x), expected)
    assert kernel.compiled_forward is None and not kernel.compiled
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not on every call
        module(x)
    fused.clear_cache()


def test_inference_on_the_fused_path_gives_the_training_forward_exactly() -> None:
    fused.clear_cache()
    fused.set_implementation("fused", compile=False)
    module = activations.create("coslu", shape="channel", channels=3, init={"a": 0.5, "b": 2.0})
    x = torch.randn(2, 3, 4, 4)
    trained = module(x.clone().requires_grad_(True))
    with torch.no_grad():
        evaluated = module(x)
    assert trained.grad_fn is not None and evaluated.grad_fn is None
    torch.testing.assert_close(evaluated, trained.detach(), rtol=0, atol=0)
    (kernel,) = fused._CACHE.values()
    assert kernel.calls == {"forward": 2, "backward": 0}
    fused.clear_cache()


def _fwd_bwd(module: Activation, x: Tensor) -> list[Tensor]:
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    grads = torch.autograd.grad((out * out).sum(), [x, *module.parameters()])
    return [out.detach(), *grads]


@pytest.mark.slow
def test_compiled_kernels_are_reused_across_modules_and_batch_sizes() -> None:
    fused.clear_cache()
    fused.set_implementation("fused", compile=True)
    first = activations.create("coslu", shape="channel", channels=4, init={"a": 0.7, "b": 1.3})
    x = torch.randn(8, 4, 5, 5)
    outputs = _fwd_bwd(first, x)
    (kernel,) = (k for k in fused._CACHE.values() if k.key[0] == "coslu")
    assert kernel.stored_forward is not None and kernel.stored_backward is not None
    compiled_once = kernel_store.StoreStats(compiled=1)
    assert kernel.stored_forward.stats == compiled_once and kernel.stored_backward.stats == compiled_once

    # A second trial: a new module of the same family, another batch size, reuses the compiled code.
    second = activations.create("coslu", shape="channel", channels=4, init={"a": 0.4, "b": 0.9})
    again = _fwd_bwd(second, torch.randn(13, 4, 5, 5))
    assert kernel.stored_forward.stats == compiled_once and kernel.stored_backward.stats == compiled_once
    assert kernel.compiled and kernel.calls == {"forward": 2, "backward": 2}

    # A validation pass (no gradients, inputs that need none) runs the same compiled forward.
    with torch.no_grad():
        evaluated = second(torch.randn(21, 4, 5, 5))
    assert kernel.stored_forward.stats == compiled_once
    assert evaluated.grad_fn is None and kernel.calls == {"forward": 3, "backward": 2}

    fused.set_implementation("eager")
    for compiled, eager in zip(outputs, _fwd_bwd(first, x), strict=True):
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert again[0].shape == (13, 4, 5, 5)
    fused.clear_cache()


# Batch, channels, height and width all 16: a conv net's 64 x 32 x 32 x 32 in small. With Dynamo's duck
# sizing they would get one symbol and a guard on their equality, so each of OTHER_SHAPES would compile.
EQUAL_SIZES = (16, 16, 16, 16)
OTHER_SHAPES = ((16, 32, 16, 16), (16, 16, 8, 8), (9, 16, 7, 11))


def _other_shapes_match_eager(module: Activation) -> None:
    channels_last = torch.channels_last
    for shape in OTHER_SHAPES:
        x = torch.randn(shape).contiguous(memory_format=channels_last)
        compiled = _fwd_bwd(module, x)
        fused.set_implementation("eager")
        for value, expected in zip(compiled, _fwd_bwd(module, x), strict=True):
            torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)
        fused.set_implementation("fused", compile=True)


@pytest.mark.slow
def test_a_stored_kernel_first_compiled_on_equal_sizes_serves_other_shapes() -> None:
    fused.clear_cache()
    fused.set_implementation("fused", compile=True)
    module = activations.create("coslu", init={"a": 0.7, "b": 1.3})
    _fwd_bwd(module, torch.randn(EQUAL_SIZES).contiguous(memory_format=torch.channels_last))
    _other_shapes_match_eager(module)
    (kernel,) = fused._CACHE.values()
    assert kernel.stored_forward is not None and kernel.stored_backward is not None
    assert kernel.stored_forward.stats == kernel.stored_backward.stats == kernel_store.StoreStats(compiled=1)
    fused.clear_cache()


@pytest.mark.slow
def test_a_dynamo_kernel_first_compiled_on_equal_sizes_serves_other_shapes_without_recompiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The torch.compile path (CUDA, and the CPU with AAF_KERNEL_STORE=0) compiles with duck sizing off.
    from torch._dynamo.utils import counters

    monkeypatch.setenv(kernel_store.ENV_STORE, "0")
    fused.clear_cache()
    fused.set_implementation("fused", compile=True)
    module = activations.create("coslu", init={"a": 0.7, "b": 1.3})
    _fwd_bwd(module, torch.randn(EQUAL_SIZES).contiguous(memory_format=torch.channels_last))
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 2  # forward and backward
    # (All above 4096 elements: Inductor's backward guards on that size, a legitimate second graph.)
    _other_shapes_match_eager(module)
    assert counters["stats"]["unique_graphs"] == graphs
    (kernel,) = fused._CACHE.values()
    assert kernel.stored_forward is None and kernel.stored_backward is None
    fused.clear_cache()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fneuron", "lslu"])
def test_compiled_gather_and_series_kernels_match_eager(name: str) -> None:
    # The two kernels that are not plain pointwise maths: F-neuron's gather + index_add, LSLU's loop.
    fused.clear_cache()
    module = build_case(name, "layer", torch.float32)
    x = case_input(name, torch.float32)
    fused.set_implementation("eager")
    expected = _fwd_bwd(module, x)
    fused.set_implementation("fused", compile=True)
    actual = _fwd_bwd(module, x)
    assert all(k.compiled for k in fused._CACHE.values())
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)
    fused.clear_cache()
