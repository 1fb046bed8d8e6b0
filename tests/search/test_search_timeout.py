"""``--timeout``: no trial starts once it has passed, the running ones finish, and a rerun continues."""

from __future__ import annotations

import io
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import FakeRunner
from optuna.trial import TrialState
from ray.tune.search import Searcher

from aaf_search.cli import main
from aaf_search.config import TrialConfig
from aaf_search.errors import UserError
from aaf_search.search import SearchSettings, run_search
from aaf_search.search import ray_trainable as wire
from aaf_search.search.duration import parse_duration
from aaf_search.search.local import LocalBackend
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.ray_searcher import StudySearcher
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.session import SearchSession
from aaf_search.search.settings import Resources
from aaf_search.search.storage import open_storage
from aaf_search.search.summary import summarize
from aaf_search.spaces import CATALOG
from aaf_search.trials.report import TrialResult

SPACE = CATALOG["trainable_zoo"]
TRIAL_SECONDS = 10.0  # on the fake clock


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600),
        ("90s", 90),
        ("30m", 1800),
        ("1.5h", 5400),
        ("1h30m", 5400),
        ("1h 30m 15s", 5415),
        ("2d", 172800),
        (" 10M ", 600),
        (".5", 0.5),
    ],
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-5", "5x", "1e3", "inf", "nan", "m", "1h30", "h1", "1:30:00"])
def test_anything_else_is_refused_with_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be a positive duration in seconds, or numbers with s, m, h or d \("):
        parse_duration(text)


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class TimedRunner(FakeRunner):
    """A fake trial that takes ``TRIAL_SECONDS`` of the fake clock; ``started`` records when each began."""

    clock: FakeClock = field(default_factory=FakeClock)
    started: list[float] = field(default_factory=list)

    def __call__(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        self.started.append(self.clock.now)
        self.clock.now += TRIAL_SECONDS
        return super().__call__(config, **kwargs)


def session(tmp_path: Path, runner: TimedRunner, *, target: int, timeout: float) -> SearchSession:
    storage = open_storage(f"journal:{tmp_path / 'study.log'}")
    study = optuna.create_study(storage=storage, direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    return SearchSession(
        study=study,
        recorder=TrialRecorder(SPACE, SPACE.defaults, resolve_objectives(("accuracy",), SPACE.defaults), 0),
        target=target,
        progress=ProgressLine("zoo", target, stream=io.StringIO(), clock=runner.clock, budget=timeout),
        run_dir=tmp_path / "run",
        runner=runner,
        resources=Resources(),
        timeout=timeout,
    )


def notes(session: SearchSession) -> str:
    stream = session.progress.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_the_local_backend_starts_no_trial_after_the_timeout(tmp_path: Path) -> None:
    runner = TimedRunner()
    search = session(tmp_path, runner, target=10, timeout=25.0)
    LocalBackend().run(search)
    # Trials start at 0, 10 and 20 s; the one started at 20 s runs past the timeout and still completes.
    assert runner.started == [0.0, 10.0, 20.0]
    assert [t.state for t in search.study.trials] == [TrialState.COMPLETE] * 3
    assert search.timed_out and not search.gave_up
    assert "stopping: the --timeout of 0:00:25 has passed; no trial starts now" in notes(search)
    last_count = notes(search).splitlines()[-2]
    assert last_count.startswith("zoo: 3/10 trials (3 complete, 0 pruned), 0 failed, 0 running, best")
    assert last_count.endswith(", 0:00:30 of 0:00:25")


def test_a_timeout_after_the_last_trial_goes_unmentioned(tmp_path: Path) -> None:
    runner = TimedRunner()
    search = session(tmp_path, runner, target=2, timeout=15.0)
    LocalBackend().run(search)
    assert len(runner.started) == 2 and not search.timed_out
    assert "--timeout" not in notes(search)


def test_the_ray_searcher_lets_running_trials_finish_and_then_stops(tmp_path: Path) -> None:
    runner = TimedRunner()
    search = session(tmp_path, runner, target=10, timeout=25.0)
    searcher = StudySearcher(search, threads=1, workdir=tmp_path)
    ids = (f"t{n}" for n in itertools.count())
    live: dict[str, dict[str, Any]] = {}
    # As Ray calls it with two trials at a time: the two in flight share the fake clock's 10 s steps.
    for _ in range(100):
        while len(live) < 2 and isinstance(config := searcher.suggest(trial_id := next(ids)), dict):
            live[trial_id] = config
        if not live:
            break
        trial_id, config = next(iter(live.items()))
        del live[trial_id]
        result = runner(TrialConfig.from_dict(config[wire.CONFIG_KEY]))
        searcher.on_trial_complete(trial_id, result=wire.final_metrics(result))
    # Trials 0 and 1 at 0 s, 2 at 10 s, 3 at 20 s; at 30 s the timeout has passed with trial 3 still running.
    assert len(search.study.trials) == 4
    assert [t.state for t in search.study.trials] == [TrialState.COMPLETE] * 4
    assert search.timed_out
    assert searcher.suggest("one more") == Searcher.FINISHED


@dataclass
class SlowRunner(FakeRunner):
    seconds: float = 0.2

    def __call__(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        time.sleep(self.seconds)
        return super().__call__(config, **kwargs)


def test_a_search_under_a_timeout_stops_short_and_a_rerun_continues() -> None:
    storage = "sqlite:///runs/study.db"
    settings = SearchSettings(
        space="trainable_zoo", trials=50, sampler="random", pruner="none", storage=storage, epochs=1, timeout=0.5
    )
    outcome = run_search(settings, runner=SlowRunner(), stream=io.StringIO())
    finished = len(outcome.study.trials)
    # Real time: trials of 0.2 s under a 0.5 s timeout; a slow machine runs fewer, never all 50.
    assert 1 <= finished < 50 and outcome.timed_out
    assert outcome.study.user_attrs["settings"]["timeout"] == 0.5
    assert "stopped by --timeout short of --trials; run the command again to continue the study" in summarize(
        outcome, storage
    )
    assert outcome.best_path is not None and outcome.best_path.is_file()

    more = run_search(
        SearchSettings(space="trainable_zoo", trials=finished + 1, sampler="random", storage=storage, epochs=1),
        runner=FakeRunner(),
        stream=io.StringIO(),
    )
    assert len(more.study.trials) == finished + 1 and not more.timed_out
    assert "--timeout" not in summarize(more, storage)


def test_a_bad_timeout_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--space", "trainable_zoo", "--timeout", "ten minutes"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "aaf-search search: argument --timeout: must be a positive duration in seconds, "
        "or numbers with s, m, h or d (600, 90s, 30m, 1h30m, 1.5h), got 'ten minutes'"
    )
    assert not Path("aaf-runs").exists()
    with pytest.raises(UserError, match=r"--timeout must be > 0 seconds, got -1"):
        run_search(SearchSettings(space="trainable_zoo", timeout=-1.0))
