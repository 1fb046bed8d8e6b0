"""The local backend end to end with a fake runner: what the study holds, resume, interruption, refusals."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import FakeRunner, accuracy
from optuna.trial import TrialState

from aaf_search.config import TrialConfig, load_yaml
from aaf_search.errors import UserError
from aaf_search.search import SearchSettings, run_search, trial_seed
from aaf_search.search.liveness import ATTR_OWNER, owner_record
from aaf_search.search.settings import Resources
from aaf_search.search.study import INTERRUPTED_REASON, sessions
from aaf_search.spaces import CATALOG
from aaf_search.trials.report import TrialResult

STORAGE = "sqlite:///runs/study.db"
# A space file sampling the learning rate alone.
LR_ONLY_SPACE = "model: dnn2\nparams:\n  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.01}\n"


def settings(**changes: object) -> SearchSettings:
    base = {"space": "trainable_zoo", "trials": 4, "sampler": "random", "storage": STORAGE, "epochs": 2, "seed": 7}
    return SearchSettings(**{**base, **changes})  # type: ignore[arg-type]


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_search_records_complete_and_pruned_trials(odd_pruner: str) -> None:
    runner = FakeRunner()
    stream = io.StringIO()
    outcome = run_search(settings(pruner=odd_pruner), runner=runner, stream=stream)

    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert states(study) == ["COMPLETE", "PRUNED", "COMPLETE", "PRUNED"]
    assert study.user_attrs["space"] == "trainable_zoo"
    assert study.user_attrs["objectives"] == ["accuracy"]
    assert study.user_attrs["seed"] == 7
    assert study.user_attrs["settings"]["sampler"] == "random"
    assert study.user_attrs["aaf_search_version"] == "0.1.0"

    complete, pruned = study.trials[0], study.trials[1]
    config = runner.configs[0]
    assert complete.value == accuracy(config, 2)
    assert complete.intermediate_values == {1: accuracy(config, 1), 2: accuracy(config, 2)}
    assert complete.user_attrs["config"] == config.to_dict()
    assert complete.user_attrs["seed"] == config.seed == trial_seed(7, 0)
    assert complete.user_attrs["space"] == "trainable_zoo"
    assert complete.user_attrs["epochs_run"] == 2
    assert complete.user_attrs["param_count"] == 1000 + 10 * len(config.plan)
    assert complete.user_attrs["activation_param_count"] == 10 * len(config.plan)
    assert complete.user_attrs["epoch_seconds"] == 0.5
    assert complete.user_attrs["activation_params"] == {"fc.act1": {"a": {"mean": 1.0, "min": 0.5, "max": 1.5}}}
    assert complete.user_attrs["device"] == "cpu"
    assert complete.user_attrs["test_accuracy"] == pytest.approx(accuracy(config, 2) - 0.01)
    assert complete.user_attrs["extra/base_val_accuracy"] == 0.25

    assert pruned.intermediate_values == {1: accuracy(runner.configs[1], 1)}
    assert pruned.user_attrs["epochs_run"] == 1
    assert pruned.user_attrs["seed"] == trial_seed(7, 1)

    best = max((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    config_back, meta = load_yaml(outcome.best_path)  # type: ignore[arg-type]
    assert outcome.best_path == Path("aaf-runs/trainable_zoo/best.yaml")
    assert config_back.to_dict() == best.user_attrs["config"]
    assert (meta["trial_number"], meta["score"], meta["study"]) == (best.number, best.value, "trainable_zoo")
    assert "4/4 trials (2 complete, 2 pruned), 0 failed, 0 running" in stream.getvalue().splitlines()[-1]


def test_precision_from_the_command_line_reaches_every_trial_and_the_study(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    run_search(settings(trials=2, precision="bf16"), runner=runner, stream=io.StringIO())
    assert [config.precision for config in runner.configs] == ["bf16", "bf16"]
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert study.user_attrs["settings"]["precision"] == "bf16"

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(UserError, match="precision fp16 needs a CUDA GPU and this machine has none"):
        run_search(settings(trials=4, precision="fp16"), runner=runner)
    assert len(runner.configs) == 2  # refused before any trial


def test_fp16_refused_for_ray_trials_given_no_gpu_even_on_a_gpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    no_gpu = settings(precision="fp16", backend="ray", resources=Resources(gpus_per_trial=0))
    with pytest.raises(UserError, match="--gpus-per-trial 0 gives Ray trials none"):
        run_search(no_gpu, runner=FakeRunner())
    assert not Path(STORAGE.removeprefix("sqlite:///")).exists()  # refused before the study was created


def test_the_same_seed_proposes_the_same_configurations_on_sqlite() -> None:
    # On a journal each process draws its own proposals (several may share the study): see sampler_seed.
    first, again = FakeRunner(), FakeRunner()
    run_search(settings(trials=3, pruner="none", study="first"), runner=first)
    run_search(settings(trials=3, pruner="none", study="again", out=Path("again")), runner=again)
    assert [c.to_dict() for c in again.configs] == [c.to_dict() for c in first.configs]


def test_resume_runs_only_the_missing_trials() -> None:
    first = FakeRunner()
    run_search(settings(trials=2, pruner="none"), runner=first)
    second = FakeRunner()
    run_search(settings(trials=5, pruner="none"), runner=second)
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert (len(first.configs), len(second.configs)) == (2, 3)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert [c.seed for c in second.configs] == [trial_seed(7, n) for n in (2, 3, 4)]
    # The resumed sampler does not replay the first session's draws.
    assert {c.optim.lr for c in first.configs}.isdisjoint(c.optim.lr for c in second.configs)
    third, stream = FakeRunner(), io.StringIO()
    run_search(settings(trials=5, pruner="none"), runner=third, stream=stream)
    assert third.configs == []  # nothing missing, nothing run, and it says so
    assert (
        "note: study 'trainable_zoo' already holds 5 finished trials (--trials 5); nothing to run "
        "(a larger --trials runs more)\n"
    ) in stream.getvalue()
    assert [s["trials"] for s in sessions(study)] == [2, 5, 5]  # each session's settings


def test_sessions_stored_as_one_list_by_earlier_versions_are_still_listed() -> None:
    run_search(settings(trials=1, pruner="none"), runner=FakeRunner())
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    study.set_user_attr("sessions", [{"trials": 3}])  # how versions before keyed sessions stored them
    assert [s["trials"] for s in sessions(study)] == [3, 1]


def test_interrupted_trials_are_failed_and_retried() -> None:
    run_search(settings(trials=1, pruner="none"), runner=FakeRunner())
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    killed = study.ask()  # what a killed run leaves: a RUNNING trial with its parameters
    CATALOG["trainable_zoo"].sample(killed)
    # ... and its owner, a process that is gone (this pid, but another start time: the pid was recycled).
    killed.set_user_attr(ATTR_OWNER, {**owner_record(), "started": -1})
    killed.set_user_attr("seed", 1234)
    stream = io.StringIO()

    runner = FakeRunner()
    run_search(settings(trials=2, pruner="none"), runner=runner, stream=stream)
    trial = study.trials[1]
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == INTERRUPTED_REASON
    assert "marked 1 trial(s) left RUNNING by an interrupted run as FAIL" in stream.getvalue()
    assert len(runner.configs) == 1  # the FAIL trial does not count: one more trial to reach 2

    left = Path("aaf-runs/trainable_zoo/trials/0001")
    left.mkdir(parents=True)
    (left / "checkpoint.pt").write_bytes(b"cut off mid-write")  # unreadable: the retry trains from the start

    retried = FakeRunner()
    run_search(settings(trials=3, pruner="none", retry_failed=True), runner=retried)
    assert not left.exists()  # no later retry would carry that checkpoint on
    again = study.trials[3]
    assert again.user_attrs["retry_of"] == 1
    # The interrupted trial's seed, so that its checkpoint (of the same config) is carried on
    assert again.user_attrs["seed"] == 1234 and retried.configs[0].seed == 1234
    assert again.params == trial.params and again.state == TrialState.COMPLETE
    run_search(settings(trials=4, pruner="none", retry_failed=True), runner=FakeRunner())
    assert [t.user_attrs.get("retry_of") for t in study.trials] == [None, None, None, 1, None]


def test_diverged_trial_fails_with_its_reason_and_the_search_goes_on() -> None:
    runner = FakeRunner(diverge_calls={1})
    stream = io.StringIO()
    run_search(settings(trials=3, pruner="none"), runner=runner, stream=stream)
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[1].user_attrs["fail_reason"] == "trial diverged at epoch 1: loss is nan"
    assert "trial 1 failed: trial diverged at epoch 1: loss is nan" in stream.getvalue()
    assert "3/3 trials (3 complete, 0 pruned), 1 failed, 0 running" in stream.getvalue().splitlines()[-1]


def test_a_trial_whose_objective_value_is_nan_fails_with_its_reason() -> None:
    fake = FakeRunner()

    def nan_on_second_call(config: TrialConfig, **kwargs: Any) -> TrialResult:
        result = fake(config, **kwargs)
        return dataclasses.replace(result, val_accuracy=math.nan) if len(fake.configs) == 2 else result

    stream = io.StringIO()
    run_search(settings(trials=2, pruner="none"), runner=nan_on_second_call, stream=stream)
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs["fail_reason"] == "objective values [nan] are not all finite"
    assert "2/2 trials (2 complete, 0 pruned), 1 failed, 0 running" in stream.getvalue().splitlines()[-1]


def test_a_study_of_another_space_is_refused_and_left_untouched() -> None:
    run_search(settings(trials=1, pruner="none"), runner=FakeRunner())
    runner = FakeRunner()
    with pytest.raises(UserError, match="study 'trainable_zoo' was created by space 'trainable_zoo', not 'leaf_init'"):
        run_search(settings(space="leaf_init", study="trainable_zoo"), runner=runner)
    with pytest.raises(UserError, match="study 'trainable_zoo' optimises accuracy, not accuracy,params"):
        run_search(settings(objectives=("accuracy", "params"), pruner="none"), runner=runner)
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert len(study.trials) == 1 and runner.configs == []
    assert len(sessions(study)) == 1


def test_two_python_spaces_whose_functions_share_a_name_keep_their_own_studies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module, family in (("zoo_spaces", "coslu"), ("leaf_spaces", "leaf")):
        (tmp_path / f"{module}.py").write_text(
            "from aaf_search.spaces.common import everywhere\n\n"
            "def suggest(trial, defaults):\n"
            f"    trial.suggest_int('width', 1, 4)\n"
            f"    return defaults.trial(plan=everywhere('{family}'))\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("zoo_spaces", "leaf_spaces"):
        outcome = run_search(settings(space=f"{module}:suggest", trials=1, pruner="none"), runner=FakeRunner())
        assert outcome.study.study_name == f"{module}:suggest"
        assert outcome.run_dir == Path("aaf-runs", f"{module}_suggest")  # ":" becomes "_" there
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(STORAGE))
    assert names == ["leaf_spaces:suggest", "zoo_spaces:suggest"]


def test_a_user_space_failing_on_a_later_sample_stops_the_search_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pre-flight's one probe passes; the search's second trial is the first to meet the bug.
    (tmp_path / "flaky_spaces.py").write_text(
        "def suggest(trial, defaults):\n"
        "    lr = trial.suggest_float('opt/lr', 1e-3, 1e-2)\n"
        "    if trial.number == 1:\n"
        "        raise KeyError('width')\n"
        "    return defaults.trial()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError) as caught:
        run_search(settings(space="flaky_spaces:suggest", trials=3, pruner="none"), runner=FakeRunner())
    message = "space 'flaky_spaces:suggest' failed on a sample trial: KeyError: 'width' (flaky_spaces.py:4)"
    assert str(caught.value) == message
    study = optuna.load_study(study_name="flaky_spaces:suggest", storage=STORAGE)
    assert states(study) == ["COMPLETE", "FAIL"]
    assert study.trials[1].user_attrs["fail_reason"] == message


def test_continuing_a_study_from_another_space_file_of_the_same_name_says_so(tmp_path: Path) -> None:
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "space.yaml").write_text(LR_ONLY_SPACE)
    streams = []
    for folder in ("first", "first", "second"):
        stream = io.StringIO()
        space = str(tmp_path / folder / "space.yaml")
        run_search(settings(space=space, pruner="none", trials=1), runner=FakeRunner(), stream=stream)
        streams.append(stream.getvalue())
    assert "was started from" not in streams[1]  # the same file again
    first, second = tmp_path / "first" / "space.yaml", tmp_path / "second" / "space.yaml"
    assert f"note: study 'space' was started from {first}; this search reads {second}" in streams[2]


def test_a_space_file_recorded_by_a_relative_path_is_the_same_file_from_its_directory() -> None:
    Path("space.yaml").write_text(LR_ONLY_SPACE)
    study = run_search(settings(space="space.yaml", pruner="none", trials=1), runner=FakeRunner()).study
    study.set_user_attr("space_source", "space.yaml")  # as versions before absolute paths recorded it
    stream = io.StringIO()
    run_search(settings(space="space.yaml", pruner="none", trials=2), runner=FakeRunner(), stream=stream)
    assert "was started from" not in stream.getvalue()


def test_multi_objective_search_keeps_a_pareto_front() -> None:
    runner = FakeRunner()
    run_search(settings(objectives=("accuracy", "params"), sampler="nsga2", trials=4), runner=runner)
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.trials[0].values == [accuracy(runner.configs[0], 2), 1000 + 10 * len(runner.configs[0].plan)]
    assert study.trials[0].user_attrs["history"] == [accuracy(runner.configs[0], 1), accuracy(runner.configs[0], 2)]
    assert 1 <= len(study.best_trials) <= 4


def test_grid_runs_each_point_once_and_stops() -> None:
    Path("grid.yaml").write_text(
        "model: dnn2\n"
        "base: {plan: [{select: all, activation: {family: relu}}]}\n"
        "params:\n"
        "  - {name: act/family, target: plan.0.activation.family, type: categorical, choices: [relu, coslu]}\n"
        "  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.003, step: 0.001}\n"
    )
    runner = FakeRunner()
    run_search(settings(space="grid.yaml", sampler="grid", trials=50, pruner="none", epochs=1), runner=runner)
    study = optuna.load_study(study_name="grid", storage=STORAGE)
    assert sorted((t.params["act/family"], t.params["opt/lr"]) for t in study.trials) == [
        (family, lr) for family in ("coslu", "relu") for lr in (0.001, 0.002, 0.003)
    ]


def test_journal_storage(tmp_path: Path) -> None:
    run_search(settings(trials=2, pruner="none", storage="journal:runs/journal.log"), runner=FakeRunner())
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("runs/journal.log"))
    assert len(optuna.load_study(study_name="trainable_zoo", storage=storage).trials) == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_shows_as_the_search_starts_and_each_trial_runs() -> None:
    log, terminal = io.StringIO(), Terminal()
    run_search(settings(trials=2, pruner="none"), runner=FakeRunner(), stream=log)
    run_search(settings(trials=3, pruner="none"), runner=FakeRunner(), stream=terminal)

    # A log: the line as the search starts (before any trial ends), then one per finished trial.
    lines = [line.rsplit(",", 1)[0] for line in log.getvalue().splitlines()]
    assert lines[0] == "trainable_zoo: 0/2 trials (0 complete, 0 pruned), 0 failed, 0 running, best -"
    assert [line.split(", best")[0] for line in lines[1:]] == [
        "trainable_zoo: 1/2 trials (1 complete, 0 pruned), 0 failed, 0 running",
        "trainable_zoo: 2/2 trials (2 complete, 0 pruned), 0 failed, 0 running",
    ]
    # A terminal: the continued study's line, then the third trial running, then it finished.
    shown = [text.split(", best")[0] for text in terminal.getvalue().split("\r\x1b[2K")[1:]]
    assert shown == [
        "trainable_zoo: 2/3 trials (2 complete, 0 pruned), 0 failed, 0 running",
        "trainable_zoo: 2/3 trials (2 complete, 0 pruned), 0 failed, 1 running",
        "trainable_zoo: 3/3 trials (3 complete, 0 pruned), 0 failed, 0 running",
    ]


def test_no_progress_line_when_the_study_holds_its_trials_already() -> None:
    run_search(settings(trials=1), runner=FakeRunner(), stream=io.StringIO())
    stream = io.StringIO()
    run_search(settings(trials=1), runner=FakeRunner(), stream=stream)
    assert "running" not in stream.getvalue()  # the note that nothing runs, and no progress line
    assert "nothing to run" in stream.getvalue()
