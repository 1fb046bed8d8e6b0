"""One trial end to end on the bundled digits data: accuracy, determinism, divergence, run files."""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import pytest
import torch

from aaf_search.activations import fused
from aaf_search.config import ActivationSpec, DataConfig, OptimConfig, PlanEntry, PretrainConfig, TrialConfig
from aaf_search.errors import UserError
from aaf_search.trials import loop, optim
from aaf_search.trials.data import load_data
from aaf_search.trials.loop import FitSettings, _check_finite, _train_step, grad_scaler, use_channels_last
from aaf_search.trials.models import build_model
from aaf_search.trials.optim import build_optimisers
from aaf_search.trials.plan import apply_plan, uniform_plan
from aaf_search.trials.report import EpochReport, TrialDiverged
from aaf_search.trials.runner import run_trial


def test_dnn2_relu_learns_digits() -> None:
    result = run_trial(TrialConfig(model="dnn2", epochs=10, seed=0, device="cpu"))
    assert result.test_accuracy >= 0.90
    assert result.epochs_run == 10
    assert 1 <= result.best_epoch <= 10
    assert result.val_accuracy == max(r.val_accuracy for r in result.history)
    assert result.activation_param_count == 0


def test_a_trial_prepares_its_process_for_cpu_training(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both are process-wide and idempotent; the recorders only check that every trial asks for them.
    calls: list[str] = []
    monkeypatch.setattr(loop, "tune_malloc", lambda: calls.append("malloc") or True)
    monkeypatch.setattr(loop, "prefault_torch", lambda: calls.append("prefault") or 0)
    run_trial(TrialConfig(model="dnn2", epochs=1, seed=0, device="cpu"))
    assert calls == ["malloc", "prefault"]


def test_same_seed_gives_identical_metrics() -> None:
    config = TrialConfig(model="dnn2", epochs=2, seed=3, device="cpu", plan=uniform_plan("coslu", shape="network"))
    first, second = run_trial(config), run_trial(config)
    assert [r.val_loss for r in first.history] == [r.val_loss for r in second.history]
    assert first.test_accuracy == second.test_accuracy
    assert first.history[-1].activation_params == second.history[-1].activation_params


def test_a_small_trial_trains_eagerly_rather_than_compile_a_kernel_it_cannot_repay() -> None:
    # lincomb_bases' trials on digits: every basis subset is a kernel of its own, and an MLP's activations
    # (64 x (392 + 196) elements, 23 steps an epoch) repay a compilation only after hundreds of epochs. Before
    # the plan, "auto" compiled one (4-8 s) for almost every trial of a few hundred milliseconds.
    fused.clear_cache()
    fused.set_implementation("auto", compile=True)
    try:
        plan = uniform_plan("lincomb", options={"bases": ["relu", "silu"]})
        result = run_trial(TrialConfig(model="dnn3", epochs=4, seed=0, device="cpu", plan=plan))
        assert fused.cache_info() == {}  # no kernel built, none compiled
        assert result.fused_activations == ()
    finally:
        fused.set_implementation(None)
        fused.clear_cache()


def test_a_trial_records_the_families_that_trained_fused() -> None:
    fused.set_implementation("fused", compile=False)
    try:
        plan = (
            PlanEntry(select="fc.act1", activation=ActivationSpec(family="coslu")),
            PlanEntry(select="fc.act2", activation=ActivationSpec(family="silu")),  # no fused kernel
        )
        result = run_trial(TrialConfig(model="dnn3", epochs=1, seed=0, device="cpu", plan=plan))
    finally:
        fused.set_implementation(None)
        fused.clear_cache()
    assert result.fused_activations == ("coslu",)


def test_planned_steps_count_the_batches_a_run_trains() -> None:
    model = build_model("dnn2", input_shape=(1, 8, 8), num_classes=10)
    apply_plan(model, uniform_plan("ahaf"), torch.zeros(2, 1, 8, 8))
    settings = FitSettings(optim=OptimConfig(), epochs=3, batch_size=10, seed=0)
    opts = build_optimisers(model, settings.optim, settings.epochs)
    assert loop.planned_steps(101, settings, opts) == 30  # a last batch of one sample is dropped
    assert loop.planned_steps(102, settings, opts) == 33
    two_stage = FitSettings(optim=OptimConfig(dspu4=True), epochs=3, batch_size=10, seed=0)
    opts = build_optimisers(model, two_stage.optim, two_stage.epochs)
    assert loop.planned_steps(100, two_stage, opts) == 60  # two passes a batch


def test_a_conv_net_trains_channels_last_on_cpu_with_its_weights_kept() -> None:
    data = load_data(DataConfig(name="digits"))
    model = build_model("resnet8", input_shape=data.input_shape, num_classes=data.num_classes)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    use_channels_last(model, data)
    conv_weights = [p for p in model.parameters() if p.dim() == 4]
    assert conv_weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())


def test_epoch_reports_carry_learned_activation_parameters() -> None:
    reports: list[EpochReport] = []
    config = TrialConfig(model="dnn3", epochs=2, device="cpu", plan=uniform_plan("coslu", shape="network"))
    result = run_trial(config, on_epoch=reports.append)
    assert [r.epoch for r in reports] == [1, 2]
    # One shared module: both slots report the same values, and training moved them from the init (1, 1).
    params = reports[-1].activation_params
    assert set(params) == {"fc.act1", "fc.act2"}
    assert params["fc.act1"] == params["fc.act2"]
    assert params["fc.act1"]["a"]["mean"] != pytest.approx(1.0, abs=1e-6)
    assert result.activation_param_count == 2


def test_leaf_as_relu_leaves_a_relu_model_unchanged() -> None:
    data = load_data(DataConfig(name="synthetic", options={"shape": [3, 32, 32]}))
    torch.manual_seed(0)
    model = build_model("resnet8", input_shape=data.input_shape, num_classes=data.num_classes).eval()
    before = model(data.val_x[:16])
    apply_plan(model, uniform_plan("leaf", init="as_relu", shape="neuron"), data.val_x[:2])
    assert torch.allclose(model(data.val_x[:16]), before, atol=1e-4)


def test_ahaf_as_silu_leaves_a_silu_model_unchanged() -> None:
    data = load_data(DataConfig(name="synthetic", options={"shape": [1, 16, 16]}))
    torch.manual_seed(0)
    model = build_model("kerasnet", input_shape=data.input_shape, num_classes=4, base_activation="silu").eval()
    before = model(data.val_x[:16])
    apply_plan(model, uniform_plan("ahaf", init="as_silu"), data.val_x[:2])
    assert torch.allclose(model(data.val_x[:16]), before, atol=1e-4)


def test_divergence_ends_the_trial_with_its_epoch() -> None:
    config = TrialConfig(model="dnn2", epochs=3, device="cpu", optim=OptimConfig(name="sgd", lr=1e12))
    with pytest.raises(TrialDiverged) as error:
        run_trial(config)
    assert error.value.epoch == 1


def test_early_stopping_stops_after_patience() -> None:
    # lr 0 never improves validation accuracy after the first epoch.
    config = TrialConfig(model="dnn2", epochs=10, early_stop_patience=2, device="cpu", optim=OptimConfig(lr=1e-12))
    result = run_trial(config)
    assert result.epochs_run == 3
    assert result.stopped_early


def test_run_directory_has_weights_config_and_metrics(tmp_path: Path) -> None:
    config = TrialConfig(model="dnn2", epochs=2, device="cpu")
    result = run_trial(config, out_dir=tmp_path)
    assert (tmp_path / "model.pt").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(result.history[-1].val_accuracy, abs=1e-6)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert "fc1.weight" in state or any(k.endswith("weight") for k in state)


def test_a_model_whose_loading_reads_the_state_dicts_versions_gets_its_best_weights_back(tmp_path: Path) -> None:
    # MNASNet's BatchNorm loading refuses a state dict without the per-module versions PyTorch records
    # beside the tensors; the best epoch's weights were kept without them and every trial failed.
    config = TrialConfig(
        model="tv:mnasnet0_5",
        data=DataConfig(name="synthetic", options={"shape": [3, 32, 32], "size": 64}),
        epochs=1,
        batch_size=32,
    )
    result = run_trial(config, out_dir=tmp_path)
    assert result.epochs_run == 1 and 0.0 <= result.test_accuracy <= 1.0
    assert hasattr(torch.load(tmp_path / "model.pt", weights_only=True), "_metadata")


def test_pretrain_then_finetune_only_activations(tmp_path: Path) -> None:
    config = TrialConfig(
        model="dnn2",
        epochs=1,
        device="cpu",
        plan=uniform_plan("ahaf", init="as_relu"),
        pretrain=PretrainConfig(epochs=3, cache_dir=str(tmp_path)),
    )
    result = run_trial(config)
    assert result.extra["base_val_accuracy"] > 0.8
    # AHAF-as-ReLU reproduces ReLU, so patching keeps the base accuracy.
    assert result.extra["patched_val_accuracy"] == pytest.approx(result.extra["base_val_accuracy"], abs=0.01)
    # A trial with another seed (the next trial of a search) reuses the cached base model.
    again = run_trial(config.replace(seed=config.seed + 1))
    assert len(list(tmp_path.glob("*.pt"))) == 1
    assert again.extra["base_val_accuracy"] == result.extra["base_val_accuracy"]


def test_p24sl_puts_leaf_p2_p4_in_a_slower_group() -> None:
    data = load_data(DataConfig())
    model = build_model("dnn2", input_shape=data.input_shape, num_classes=10)
    apply_plan(model, uniform_plan("leaf"), data.train_x[:2])
    opts = build_optimisers(model, OptimConfig(name="adam", lr=1e-3, p24sl=True), epochs=1)
    lrs = {group["name"]: group["lr"] for group in opts.main.param_groups}
    # The network and the other activation parameters share one group: their settings are the same.
    assert lrs == {"network+activations": 1e-3, "activations_p24sl": pytest.approx(1e-6)}
    slow = {name.rsplit(".", 1)[-1] for name, p in model.named_parameters() if id(p) in slow_ids(opts)}
    assert slow == {"p2", "p4"}


def slow_ids(opts: optim.Optimisers) -> set[int]:
    return {id(p) for group in opts.main.param_groups if group["name"] == "activations_p24sl" for p in group["params"]}


def test_activation_parameters_with_their_own_lr_get_their_own_group() -> None:
    data = load_data(DataConfig())
    model = build_model("dnn2", input_shape=data.input_shape, num_classes=10)
    apply_plan(model, uniform_plan("coslu"), data.train_x[:2])
    same = build_optimisers(model, OptimConfig(lr=1e-3), epochs=1).main.param_groups
    own = build_optimisers(model, OptimConfig(lr=1e-3, act_lr=1e-2), epochs=1).main.param_groups
    assert [(g["name"], len(g["params"])) for g in same] == [("network+activations", len(list(model.parameters())))]
    assert [(g["name"], g["lr"]) for g in own] == [("network", 1e-3), ("activations", 1e-2)]


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_cpu_optimisers_use_fused_kernels_with_the_default_update(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_data(DataConfig())
    torch.manual_seed(0)
    model = build_model("dnn2", input_shape=data.input_shape, num_classes=10)
    apply_plan(model, uniform_plan("coslu"), data.train_x[:2])
    reference = copy.deepcopy(model)
    config = OptimConfig(name=name, weight_decay=1e-2)
    fused = build_optimisers(model, config, epochs=1).main
    monkeypatch.setattr(optim, "FUSED_DEVICES", ())
    default = build_optimisers(reference, config, epochs=1).main
    assert [group["fused"] for group in fused.param_groups] == [True, True]
    assert [group["fused"] for group in default.param_groups] == [False, False]
    for net, optimizer in ((model, fused), (reference, default)):
        for _ in range(3):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(data.train_x[:64]), data.train_y[:64]).backward()
            optimizer.step()
    for after, expected in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-6)


def test_fp16_scales_the_loss_unscales_the_step_and_skips_an_overflow() -> None:
    assert grad_scaler(torch.device("cpu"), "fp16").is_enabled()  # (fp16 trains on CUDA only)
    assert not grad_scaler(torch.device("cpu"), "bf16").is_enabled()
    data = load_data(DataConfig())
    xb, yb = data.train_x[:64], data.train_y[:64]
    config = OptimConfig(name="sgd")  # SGD's update is proportional to the gradient: a missed unscale shows
    settings = FitSettings(config, epochs=1, batch_size=64, seed=0)

    def one_step(scaler: torch.amp.GradScaler) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = build_model("dnn2", input_shape=data.input_shape, num_classes=10)
        _train_step(model, xb, yb, build_optimisers(model, config, epochs=1), settings, scaler)
        return [param.detach() for param in model.parameters()]

    unscaled = one_step(grad_scaler(torch.device("cpu"), "fp32"))
    for scaled, expected in zip(one_step(torch.amp.GradScaler("cpu", init_scale=2.0**16)), unscaled, strict=True):
        torch.testing.assert_close(scaled, expected)
    torch.manual_seed(0)
    initial = [
        param.detach() for param in build_model("dnn2", input_shape=data.input_shape, num_classes=10).parameters()
    ]
    overflowed = one_step(torch.amp.GradScaler("cpu", init_scale=math.inf))  # inf gradients: no step
    assert all(torch.equal(param, first) for param, first in zip(overflowed, initial, strict=True))
    assert not torch.equal(unscaled[0], initial[0])


def test_dspu4_uses_two_optimisers_and_still_learns() -> None:
    config = TrialConfig(model="dnn2", epochs=3, device="cpu", plan=uniform_plan("ahaf"), optim=OptimConfig(dspu4=True))
    result = run_trial(config)
    assert result.val_accuracy > 0.8


def test_fp16_on_cpu_is_a_user_error() -> None:
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        run_trial(TrialConfig(model="dnn2", epochs=1, device="cpu", precision="fp16"))


def test_bad_plan_selector_is_a_user_error() -> None:
    plan = (PlanEntry("tag:attention_gate", ActivationSpec("apa")),)
    with pytest.raises(UserError, match="matches no activation slot"):
        run_trial(TrialConfig(model="dnn2", epochs=1, device="cpu", plan=plan))


@pytest.mark.parametrize(
    ("poisoned", "value", "message"),
    [
        ("act", float("nan"), "an activation parameter is not finite"),
        ("head.weight", float("inf"), "parameter 'head.weight' is not finite"),
        ("fc.linear1.bias", float("-inf"), "parameter 'fc.linear1.bias' is not finite"),
    ],
)
def test_a_non_finite_parameter_is_named_after_the_epoch(poisoned: str, value: float, message: str) -> None:
    model = build_model("dnn2", input_shape=(1, 8, 8), num_classes=10)
    apply_plan(model, uniform_plan("coslu"), torch.zeros(2, 1, 8, 8))
    params = dict(model.named_parameters())
    target = next(p for name, p in params.items() if name.endswith("act.a")) if poisoned == "act" else params[poisoned]
    with torch.no_grad():
        target.view(-1)[0] = value
    with pytest.raises(TrialDiverged, match=message):
        _check_finite(model, train_loss=0.5, epoch=3)
    with torch.no_grad():
        target.view(-1)[0] = 0.0
    _check_finite(model, train_loss=0.5, epoch=3)  # all finite again: no error
