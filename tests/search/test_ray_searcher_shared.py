"""The Ray searcher, called as Ray calls it: on a study other processes search too it claims trials as the
local backend does, it gives up after a round of failures by the local backend's rule, and it fails and
replaces a trial whose objective is not finite, as the local backend does."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import optuna
import pytest
from conftest import FakeRunner
from optuna.trial import TrialState
from ray.tune.search import Searcher

from aaf_search.config import TrialConfig
from aaf_search.search import ray_trainable as wire
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.ray_searcher import StudySearcher
from aaf_search.search.recording import TrialRecorder, stored_category
from aaf_search.search.session import Claim, SearchSession
from aaf_search.search.settings import Resources
from aaf_search.search.storage import open_storage
from aaf_search.spaces import CATALOG
from aaf_search.trials.checkpoint import CHECKPOINT_FILE


def shared_searcher(
    tmp_path: Path, target: int, running_elsewhere: int, *, shared: bool = True
) -> tuple[StudySearcher, io.StringIO]:
    """A searcher for a ``target``-trial study of which other processes already run ``running_elsewhere``."""
    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'study.log'}"), direction="maximize")
    for _ in range(running_elsewhere):
        study.ask()
    space = CATALOG["trainable_zoo"]
    objectives = resolve_objectives(("accuracy",), space.defaults)
    stream = io.StringIO()
    session = SearchSession(
        study=study,
        recorder=TrialRecorder(space, space.defaults, objectives, study_seed=0),
        target=target,
        progress=ProgressLine("zoo", target, stream=stream),
        run_dir=tmp_path / "run",
        runner=FakeRunner(),
        resources=Resources(),
        shared=shared,
    )
    return StudySearcher(session, threads=1, workdir=tmp_path), stream


def test_no_trial_is_started_while_other_processes_run_every_one_left(tmp_path: Path) -> None:
    searcher, stream = shared_searcher(tmp_path, target=2, running_elsewhere=2)
    assert searcher.suggest("a") == Searcher.FINISHED
    assert len(searcher.session.study.trials) == 2
    assert "stopping: the study's last 2 trial(s) are running in other processes" in stream.getvalue()


def test_the_open_trial_is_taken_and_no_more(tmp_path: Path) -> None:
    searcher, _ = shared_searcher(tmp_path, target=3, running_elsewhere=2)
    config = searcher.suggest("a")
    assert isinstance(config, dict) and config["number"] == 2
    assert searcher.suggest("b") is None  # its own trial still runs (and may have to be replaced)
    assert len(searcher.session.study.trials) == 3


def test_a_trial_asked_after_another_process_took_the_last_slot_fails_as_surplus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    searcher, _ = shared_searcher(tmp_path, target=2, running_elsewhere=2)
    # The claim read the study just before another process asked for the last trial.
    monkeypatch.setattr(searcher.session, "claim", lambda: Claim(missing=2, open=1))
    assert searcher.suggest("a") == Searcher.FINISHED
    surplus = searcher.session.study.trials[2]
    assert surplus.state == TrialState.FAIL and stored_category(surplus) == "surplus"
    assert "config" not in surplus.user_attrs  # given up before sampling


def test_a_round_of_crashed_workers_finishes_the_search_as_given_up(tmp_path: Path) -> None:
    searcher, stream = shared_searcher(tmp_path, target=2, running_elsewhere=0, shared=False)
    assert isinstance(searcher.suggest("a"), dict) and isinstance(searcher.suggest("b"), dict)
    searcher.on_trial_complete("a", error=True)
    assert not searcher.session.gave_up  # one failure in a row of the two this run set out to train
    searcher.on_trial_complete("b", error=True)
    assert searcher.suggest("c") == Searcher.FINISHED
    assert searcher.session.gave_up
    assert "stopping: the last 2 trials all failed" in stream.getvalue()


@pytest.mark.parametrize("retry_failed", [False, True])
def test_a_trial_whose_worker_died_runs_again_with_retry_failed(tmp_path: Path, retry_failed: bool) -> None:
    searcher, stream = shared_searcher(tmp_path, target=2, running_elsewhere=0, shared=False)
    searcher.session.retry_failed = retry_failed
    first, second = searcher.suggest("a"), searcher.suggest("b")
    assert isinstance(first, dict) and isinstance(second, dict)
    searcher.worker_failed("a", "ActorDiedError: The actor died unexpectedly before finishing this task.")
    searcher.on_trial_complete("a", error=True)

    replacement = searcher.suggest("c")
    assert isinstance(replacement, dict)
    study = searcher.session.study
    dead, new = study.trials[0], study.trials[2]
    assert stored_category(dead) == "worker"
    if retry_failed:  # the dead trial's parameters and seed, so that it carries on from its checkpoint
        assert new.user_attrs["retry_of"] == 0 and new.params == dead.params
        assert new.user_attrs["seed"] == dead.user_attrs["seed"]
        assert "trial 0 runs again (--retry-failed)" in stream.getvalue()
    else:  # a new sample
        assert "retry_of" not in new.user_attrs and new.user_attrs["seed"] != dead.user_attrs["seed"]


@pytest.mark.parametrize("stopped_by", ["the pruner", "ctrl-c"])
def test_the_driver_removes_a_pruned_trials_checkpoint_and_keeps_an_interrupted_ones(
    tmp_path: Path, stopped_by: str
) -> None:
    # Ray stops a worker the same way in both cases (its thread gets SystemExit): only the driver knows why.
    searcher, _ = shared_searcher(tmp_path, target=2, running_elsewhere=0, shared=False)
    config = searcher.suggest("a")
    assert isinstance(config, dict)
    checkpoint = Path(config[wire.OUT_DIR_KEY]) / CHECKPOINT_FILE
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"what the worker saved")
    if stopped_by == "the pruner":
        searcher.on_trial_complete("a")  # a stop without a final result: the scheduler's
    else:
        searcher.abandon("interrupted")
    trial = searcher.session.study.trials[0]
    assert trial.state == (TrialState.PRUNED if stopped_by == "the pruner" else TrialState.FAIL)
    assert checkpoint.exists() == (stopped_by == "ctrl-c")  # --retry-failed carries the interrupted one on
    assert checkpoint.parent.exists() == (stopped_by == "ctrl-c")  # no empty trial directory is left


def test_a_nan_objective_fails_with_its_reason_and_another_trial_replaces_it(tmp_path: Path) -> None:
    searcher, stream = shared_searcher(tmp_path, target=2, running_elsewhere=0, shared=False)
    first, second = searcher.suggest("a"), searcher.suggest("b")
    assert isinstance(first, dict) and isinstance(second, dict)
    # The worker trained trial 0 to the end, but its validation accuracy came out NaN.
    result = FakeRunner()(TrialConfig.from_dict(first[wire.CONFIG_KEY]))
    searcher.on_trial_complete("a", result=wire.final_metrics(dataclasses.replace(result, val_accuracy=math.nan)))

    study = searcher.session.study
    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[0].user_attrs["fail_reason"] == "objective values [nan] are not all finite"
    assert stored_category(study.trials[0]) == "error"
    assert "trial 0 failed: objective values [nan] are not all finite" in stream.getvalue()
    third = searcher.suggest("c")  # the replacement: the study still lacks 2 finished trials
    assert isinstance(third, dict) and third["number"] == 2
    for trial_id, config in (("b", second), ("c", third)):
        done = FakeRunner()(TrialConfig.from_dict(config[wire.CONFIG_KEY]))
        searcher.on_trial_complete(trial_id, result=wire.final_metrics(done))
    assert searcher.suggest("d") == Searcher.FINISHED
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
