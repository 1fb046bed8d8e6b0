"""Study -> tidy frames, and the trial records they are read from (values, per-epoch activation history)."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from aaf_search.analysis import frame
from aaf_search.analysis.shapes import shape_rows
from aaf_search.config import TrialConfig
from aaf_search.search.recording import activation_history, history_attrs
from aaf_search.trials.models import build_model
from aaf_search.trials.plan import apply_plan, summarize_activation_params, uniform_plan
from aaf_search.trials.report import EpochReport

LINCOMB = uniform_plan("lincomb", shape="layer", options={"bases": ["relu", "tanh", "identity"]})


def _study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    lr = FloatDistribution(1e-4, 1e-2, log=True)
    config = TrialConfig(plan=LINCOMB).to_dict()
    history = [{"fc.act1": {"w": 0.3}}, {"fc.act1": {"w": 0.4}}]
    w = {"mean": 0.4, "min": 0.2, "max": 0.6, "values": [0.2, 0.4, 0.6]}
    study.add_trial(
        create_trial(
            value=0.9,
            params={"opt/lr": 1e-3},
            distributions={"opt/lr": lr},
            intermediate_values={1: 0.8, 2: 0.9},
            user_attrs={
                "config": config,
                "epochs_run": 2,
                "activation_params": {"fc.act1": {"w": w}},
                "activation_history": history,
            },
        )
    )
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"opt/lr": 1e-2},
            distributions={"opt/lr": lr},
            intermediate_values={1: 0.5},
            user_attrs={"config": TrialConfig().to_dict(), "epochs_run": 1},
        )
    )
    # A multi-objective search keeps no intermediate values; its per-epoch metric is the history attr.
    study.add_trial(create_trial(value=0.7, user_attrs={"history": [0.6, 0.7], "epochs_run": 2}))
    return study


def test_family_of_a_plan() -> None:
    assert frame.family_of(TrialConfig(plan=LINCOMB).to_dict()) == "lincomb"
    assert frame.family_of(TrialConfig().to_dict()) == "base"
    assert frame.family_of(None) == "base"
    two = (*uniform_plan("apa", selectors=["fc.act1"]), *uniform_plan("leaf", selectors=["fc.act2"]))
    assert frame.family_of(TrialConfig(plan=(*two, *two)).to_dict()) == "apa+leaf"  # each family once, in order


def test_trials_history_and_curves_frames() -> None:
    study = _study()
    trials = frame.trials_frame(study)
    assert list(trials.columns) == [*frame.TRIAL_COLUMNS, "opt/lr"]
    assert list(trials["state"]) == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert list(trials["family"]) == ["lincomb", "base", "base"]
    assert math.isnan(trials.loc[1, "value"]) and trials.loc[1, "last_reported"] == 0.5
    assert list(frame.history_frame(trials)["value"]) == [0.9, 0.5, 0.7]  # pruned: where it was stopped
    curves = frame.curves_frame(study)
    assert curves.values.tolist() == [[0, 1, 0.8, "COMPLETE"], [0, 2, 0.9, "COMPLETE"], [1, 1, 0.5, "PRUNED"],
                                      [2, 1, 0.6, "COMPLETE"], [2, 2, 0.7, "COMPLETE"]]  # fmt: skip


def test_trajectories_and_shapes_come_from_the_study_alone() -> None:
    best = _study().trials[0]
    trajectories = frame.trajectories_frame(best)
    assert trajectories.values.tolist() == [[0, 1, "fc.act1", "w", 0.3], [0, 2, "fc.act1", "w", 0.4]]
    rows, slots = shape_rows(best)
    assert slots == ["fc.act1"]
    assert (rows[0].family, rows[0].learned, rows[0].options) == (
        "lincomb",
        {"w": [0.2, 0.4, 0.6]},  # the exact vector, not its mean: the shape is drawn as learned
        {"bases": ["relu", "tanh", "identity"]},
    )


def test_summary_keeps_values_of_one_set_vectors_only() -> None:
    model = build_model("dnn2", input_shape=(1, 8, 8), num_classes=10)
    apply_plan(model, LINCOMB, torch.zeros(2, 1, 8, 8))
    w = summarize_activation_params(model)["fc.act1"]["w"]
    assert w["values"] == pytest.approx([1 / 3] * 3)
    apply_plan(model, uniform_plan("prelu", shape="neuron"), torch.zeros(2, 1, 8, 8))
    assert "values" not in summarize_activation_params(model)["fc.act1"]["a"]  # per neuron: mean/min/max only


def test_history_attrs_keep_per_epoch_means() -> None:
    def report(epoch: int, a: float) -> EpochReport:
        return EpochReport(epoch, 1.0, 1.0, 0.5, 0.1, 1e-3, {"s": {"a": {"mean": a, "min": a, "max": a}}})

    reports = [report(1, 0.123456789), report(2, 0.5)]
    assert activation_history(reports) == [{"s": {"a": 0.123457}}, {"s": {"a": 0.5}}]
    assert history_attrs(reports, "val_accuracy")["activation_history"] == activation_history(reports)
    assert "activation_history" not in history_attrs(
        [report(1, 0.1).__class__(1, 1, 1, 0.5, 0.1, 1e-3)], "val_accuracy"
    )
