"""A trial that trained its whole budget is COMPLETE, whatever the pruner says at its last epoch.

Pruning stops a trial *early*; at the last epoch there is nothing left to save, and a PRUNED trial would
be left unranked, without its test accuracy, parameter count and ``trials/NNNN/`` directory. Here a pruner
that always says prune meets trials at their last epoch, with each backend.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import optuna
import pytest
from conftest import FakeRunner
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from aaf_search.cli import main
from aaf_search.config import TrialConfig
from aaf_search.search import PRUNERS, SearchSettings, run_search
from aaf_search.search import ray_trainable as wire
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.ray_scheduler import StudyPruningScheduler
from aaf_search.search.ray_searcher import StudySearcher
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.session import SearchSession
from aaf_search.search.settings import Resources
from aaf_search.search.storage import open_storage
from aaf_search.spaces import CATALOG

STORAGE = "sqlite:///runs/study.db"


class AlwaysPrune(optuna.pruners.BasePruner):
    """The harshest pruner there is: prune every trial at every epoch it reports from ``from_epoch`` on."""

    def __init__(self, from_epoch: int = 1) -> None:
        self.from_epoch = from_epoch

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.from_epoch


@pytest.fixture
def always_pruner(monkeypatch: pytest.MonkeyPatch) -> str:
    """Registers ``--pruner always`` for the duration of a test."""
    monkeypatch.setitem(PRUNERS, "always", lambda epochs: AlwaysPrune())
    return "always"


@pytest.mark.slow  # about 10 s on 2 cores: two real 1-epoch trials on digits
def test_one_epoch_trials_complete_with_their_run_directories_locally(always_pruner: str) -> None:
    """The user's report: ``--epochs 1`` left trials PRUNED after their only epoch, with no trial directory."""
    args = ["--space", "lincomb_bases", "--trials", "2", "--epochs", "1", "--backend", "local"]
    assert main([*args, "--pruner", always_pruner, "--storage", STORAGE]) == 0

    study = optuna.load_study(study_name="lincomb_bases", storage=STORAGE)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    for trial in study.trials:
        assert list(trial.intermediate_values) == [1]  # the last epoch is still reported (the dashboard's curve)
        assert trial.user_attrs["epochs_run"] == 1 and trial.user_attrs["param_count"] > 0
        assert 0.0 <= trial.user_attrs["test_accuracy"] <= 1.0
        trial_dir = Path(f"aaf-runs/lincomb_bases/trials/{trial.number:04d}")
        assert (trial_dir / "metrics.csv").is_file()


def test_the_pruner_still_stops_a_trial_before_its_last_epoch_locally(always_pruner: str) -> None:
    settings = SearchSettings(space="trainable_zoo", trials=2, sampler="random", pruner=always_pruner, epochs=3)
    run_search(dataclasses.replace(settings, storage=STORAGE), runner=FakeRunner())

    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    assert [list(t.intermediate_values) for t in study.trials] == [[1], [1]]


def ray_parts(tmp_path: Path, epochs: int, pruner: AlwaysPrune) -> tuple[StudySearcher, StudyPruningScheduler]:
    """The Ray backend's searcher and scheduler on a study with ``pruner``, called below as Ray calls them."""
    study = optuna.create_study(
        storage=open_storage(f"journal:{tmp_path / 'study.log'}"), direction="maximize", pruner=pruner
    )
    space = CATALOG["trainable_zoo"]
    defaults = dataclasses.replace(space.defaults, epochs=epochs)
    session = SearchSession(
        study=study,
        recorder=TrialRecorder(space, defaults, resolve_objectives(("accuracy",), defaults), study_seed=0),
        target=1,
        progress=ProgressLine("zoo", 1, stream=io.StringIO()),
        run_dir=tmp_path / "run",
        runner=FakeRunner(),
        resources=Resources(),
    )
    searcher = StudySearcher(session, threads=1, workdir=tmp_path)
    return searcher, StudyPruningScheduler(searcher)


def run_on_ray_parts(searcher: StudySearcher, scheduler: StudyPruningScheduler) -> list[str]:
    """One trial, as Ray would run it: its epoch results go to the scheduler, which may stop the trial before
    the worker sends its final result. The scheduler's answer to each epoch."""
    config = searcher.suggest("a")
    assert isinstance(config, dict)
    trial = cast(Trial, SimpleNamespace(trial_id="a"))  # all the scheduler reads of Ray's trial
    result = FakeRunner()(TrialConfig.from_dict(config[wire.CONFIG_KEY]))
    answers = []
    for report in result.history:
        answers.append(scheduler.on_trial_result(None, trial, wire.epoch_metrics(report)))  # type: ignore[arg-type]
        if answers[-1] == TrialScheduler.STOP:  # Ray stops the worker: no final result comes
            searcher.on_trial_complete("a", result=wire.epoch_metrics(report))
            return answers
        searcher.on_trial_result("a", wire.epoch_metrics(report))
    searcher.on_trial_complete("a", result=wire.final_metrics(result))
    return answers


@pytest.mark.parametrize("epochs", [1, 3])
def test_the_ray_scheduler_lets_a_trial_finish_its_last_epoch_and_it_completes(tmp_path: Path, epochs: int) -> None:
    """The pruner says prune at the last epoch (the only one with ``--epochs 1``); the scheduler lets it end."""
    searcher, scheduler = ray_parts(tmp_path, epochs, AlwaysPrune(from_epoch=epochs))
    assert run_on_ray_parts(searcher, scheduler) == [TrialScheduler.CONTINUE] * epochs

    trial = searcher.session.study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert list(trial.intermediate_values) == list(range(1, epochs + 1))
    assert trial.user_attrs["epochs_run"] == epochs and "test_accuracy" in trial.user_attrs


def test_the_ray_scheduler_stops_a_trial_the_pruner_prunes_before_its_last_epoch(tmp_path: Path) -> None:
    searcher, scheduler = ray_parts(tmp_path, epochs=3, pruner=AlwaysPrune())
    assert run_on_ray_parts(searcher, scheduler) == [TrialScheduler.STOP]

    trial = searcher.session.study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
