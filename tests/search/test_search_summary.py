"""The lines a search prints when it ends: counts, the best trial, and where its config and weights are."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import FakeRunner

from aaf_search.config import TrialConfig
from aaf_search.search import SearchSettings, run_search
from aaf_search.search.summary import summarize
from aaf_search.trials.report import TrialResult

STORAGE = "sqlite:///runs/study.db"


@dataclass
class SavingRunner(FakeRunner):
    """Writes a model.pt into the trial's directory, as run_trial does."""

    def __call__(self, config: TrialConfig, *, out_dir: Path | None = None, **kwargs: Any) -> TrialResult:
        result = super().__call__(config, out_dir=out_dir, **kwargs)
        assert out_dir is not None
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.pt").write_bytes(b"weights")
        return result


def settings(**changes: Any) -> SearchSettings:
    return SearchSettings(
        **{
            "space": "trainable_zoo",
            "trials": 3,
            "sampler": "random",
            "pruner": "none",
            "storage": STORAGE,
            "epochs": 1,
            "seed": 3,
            **changes,
        }
    )


def test_the_summary_names_the_best_trial_its_config_and_its_weights() -> None:
    outcome = run_search(settings(), runner=SavingRunner(), stream=io.StringIO())
    best = max(outcome.study.trials, key=lambda t: t.values[0])
    counts, best_line, *params, config, weights, dashboard = summarize(outcome, STORAGE).splitlines()
    assert counts == "study 'trainable_zoo' (space trainable_zoo): 3 complete, 0 pruned, 0 failed"
    assert (
        best_line
        == f"best: trial {best.number}, val_accuracy {best.values[0]:.4f}, test accuracy {best.values[0] - 0.01:.4f}"
    )
    assert params == [f"  {name} = {value}" for name, value in best.params.items()]
    run_dir = Path("aaf-runs/trainable_zoo")
    assert config == f"best config: {run_dir}/best.yaml  (aaf-search train --config {run_dir}/best.yaml)"
    trial = run_dir / "trials" / f"{best.number:04d}"
    assert weights == f"best weights: {trial}  (aaf-search activations plot --run {trial})"
    assert dashboard == f"dashboard: optuna-dashboard {STORAGE}"


def test_the_weights_line_names_the_directory_an_earlier_search_wrote_the_best_trial_into() -> None:
    # The fake's accuracy rises with the learning rate: trial 0, in first/, stays the best.
    run_search(settings(trials=1, out=Path("first"), enqueue=({"opt/lr": 0.01},)), runner=SavingRunner())
    outcome = run_search(settings(out=Path("second")), runner=SavingRunner(), stream=io.StringIO())

    assert max(outcome.study.trials, key=lambda t: t.values[0]).number == 0
    weights = Path("first/trials/0000")
    assert f"best weights: {weights}  (aaf-search activations plot --run {weights})" in summarize(outcome, STORAGE)


def test_no_weights_line_when_the_trial_saved_none() -> None:
    outcome = run_search(settings(), runner=FakeRunner(), stream=io.StringIO())
    assert "best weights" not in summarize(outcome, STORAGE)


def test_a_pareto_front_prints_each_objective_as_a_person_reads_it() -> None:
    many = SearchSettings(**{**vars(settings()), "objectives": ("accuracy", "params", "latency"), "trials": 4})
    outcome = run_search(many, runner=FakeRunner(), stream=io.StringIO())

    lines = summarize(outcome, STORAGE).splitlines()

    front = sorted(outcome.study.best_trials, key=lambda t: t.number)
    assert lines[1] == f"Pareto front (accuracy, params, latency): {len(front)} trials"
    assert lines[2 : 2 + len(front)] == [
        # the fake's counts are 1,000 + 10 per activation slot; its epochs take 0.5 s
        f"  trial {t.number}: accuracy {t.values[0]:.4f}, params {int(t.values[1]):,}, latency 0.5 s/epoch"
        for t in front
    ]
