"""The small parts of search: seeds, the sampler/pruner/backend tables, storage URLs, the progress line."""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path

import optuna
import pytest

from aaf_search.errors import UserError
from aaf_search.search import BACKENDS, PRUNERS, SAMPLERS, SamplerContext, default_backend, make_pruner, make_sampler
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.pruners import choose_pruner
from aaf_search.search.samplers import PathGridSampler
from aaf_search.search.seeds import sampler_seed, trial_seed
from aaf_search.search.storage import (
    SQLiteDatabase,
    StorageError,
    close_sqlite_storages,
    open_storage,
    redact,
    several_writers,
    sqlite_database,
)
from aaf_search.spaces import CATALOG, SpaceDefaults
from aaf_search.trials.report import EpochReport, TrialResult


def test_trial_seeds_are_stable_and_distinct() -> None:
    # Fixed values: a change here would silently change every stored trial's replay.
    assert [trial_seed(0, 0), trial_seed(0, 1), trial_seed(1, 0)] == [682248852, 585493841, 1351485902]
    assert sampler_seed(0, 0) == 279895466
    seeds = {trial_seed(s, n) for s in range(10) for n in range(100)}
    assert len(seeds) == 1000 and all(0 <= s < 2**31 for s in seeds)


def test_processes_sharing_a_study_draw_their_own_proposals() -> None:
    # Two processes started together see the same study (the same trials_before).
    assert sampler_seed(0, 0, "host:100") != sampler_seed(0, 0, "host:101")
    assert sampler_seed(0, 0, None) == sampler_seed(0, 0)
    assert [several_writers(url) for url in ("journal:runs/j.log", "postgresql://u@h/db", "sqlite:///aaf.db")] == [
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("name", [n for n in SAMPLERS if n not in ("grid", "cmaes")])
def test_every_sampler_builds_for_a_catalog_space(name: str) -> None:
    space = CATALOG["trainable_zoo"]
    sampling = make_sampler(name, 1, SamplerContext(space, space.defaults))
    assert isinstance(sampling.sampler, optuna.samplers.BaseSampler) and sampling.capacity is None


def test_cmaes_needs_its_package_or_says_so() -> None:
    space = CATALOG["trainable_zoo"]
    try:
        import cmaes  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r"sampler 'cmaes' needs the 'cmaes' package \(pip install cmaes\)"):
            make_sampler("cmaes", 1, SamplerContext(space, space.defaults))
    else:
        assert make_sampler("cmaes", 1, SamplerContext(space, space.defaults)).capacity is None


def test_grid_capacity_is_the_number_of_paths() -> None:
    space = CATALOG["pretrained_swap"]
    sampling = make_sampler("grid", 1, SamplerContext(space, space.defaults))
    assert isinstance(sampling.sampler, PathGridSampler)
    assert sampling.capacity == 2 * (2 + 3 + 3) * 2  # base x (ahaf + leaf + fneuron inits) x shape


def test_pruner_table() -> None:
    assert list(PRUNERS) == ["asha", "hyperband", "median", "none"]
    assert isinstance(make_pruner("asha", 5), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("hyperband", 5), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("none", 5), optuna.pruners.NopPruner)
    assert (choose_pruner(None, 1), choose_pruner(None, 2)) == ("asha", "none")
    with pytest.raises(UserError, match="pruner 'median' needs a single objective"):
        choose_pruner("median", 2)


def test_backend_table_defaults_to_ray_only_once_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_backend() == ("ray" if "ray" in BACKENDS else "local")
    monkeypatch.setitem(BACKENDS, "ray", BACKENDS["local"])
    assert default_backend() == "ray"


def test_objectives() -> None:
    maximize, minimize = resolve_objectives(["accuracy", "params"], SpaceDefaults())
    assert (maximize.name, maximize.direction, minimize.name, minimize.direction) == (
        "accuracy",
        "maximize",
        "params",
        "minimize",
    )
    (loss,) = resolve_objectives(["accuracy"], SpaceDefaults(metric="val_loss"))
    assert loss.direction == "minimize"


def _result(epoch_seconds: list[float]) -> TrialResult:
    history = tuple(EpochReport(i + 1, 1.0, 1.0, 0.5, s, 0.01) for i, s in enumerate(epoch_seconds))
    return TrialResult(0.5, 1.0, 0.5, 1, len(history), 100, 0, "cpu", sum(epoch_seconds), False, history)


def test_latency_is_a_typical_epoch_not_the_first() -> None:
    _, latency = resolve_objectives(["accuracy", "latency"], SpaceDefaults())
    assert latency.direction == "minimize"
    # a first epoch that compiled a kernel (4 s), one slowed by another process (0.9 s)
    assert latency.value(_result([4.0, 0.11, 0.12, 0.9, 0.1])) == pytest.approx(0.115)
    assert latency.value(_result([4.0, 0.2])) == pytest.approx(0.2)
    assert latency.value(_result([0.3])) == pytest.approx(0.3)  # one epoch: nothing else to go by


def test_storage_forms(tmp_path: Path) -> None:
    assert isinstance(open_storage(f"journal:{tmp_path}/j/journal.log"), optuna.storages.JournalStorage)
    assert isinstance(open_storage(f"sqlite:///{tmp_path}/deep/dir/a.db"), optuna.storages.RDBStorage)
    assert (tmp_path / "deep" / "dir" / "a.db").is_file()
    with pytest.raises(StorageError, match="names no file"):
        open_storage("journal:")
    assert redact("postgresql://aaf:secret@db:5432/aaf") == "postgresql://aaf:***@db:5432/aaf"
    assert redact("sqlite:///aaf-runs/aaf.db") == "sqlite:///aaf-runs/aaf.db"


def test_sqlite_storage_commits_through_a_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    storage = open_storage(f"sqlite:///{path}")
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with storage.engine.connect() as connection:  # synchronous is per connection: 1 = NORMAL
        assert connection.exec_driver_sql("PRAGMA synchronous").fetchone() == (1,)
    reopened = optuna.load_study(study_name="s", storage=open_storage(f"sqlite:///{path}"))
    assert len(reopened.trials) == 2


def test_sqlite_urls_name_their_file_and_whether_they_read_only() -> None:
    assert sqlite_database("sqlite:///runs/a.db?timeout=5") == SQLiteDatabase(Path("runs/a.db"), read_only=False)
    assert sqlite_database("sqlite:///file:runs/a.db?mode=ro&uri=true") == SQLiteDatabase(
        Path("runs/a.db"), read_only=True
    )
    assert sqlite_database("sqlite:///file:/x/a.db?immutable=1&uri=true") == SQLiteDatabase(
        Path("/x/a.db"), read_only=True
    )
    assert sqlite_database("sqlite:///file:a.db?mode=rw&uri=true") == SQLiteDatabase(Path("a.db"), read_only=False)
    assert sqlite_database("sqlite:///:memory:") is None
    assert sqlite_database("journal:runs/a.log") is None and sqlite_database("postgresql://u@h/db") is None


def test_a_finished_sqlite_study_reads_through_a_read_only_url_without_writing_a_byte(tmp_path: Path) -> None:
    path = tmp_path / "archive" / "aaf.db"
    study = optuna.create_study(storage=open_storage(f"sqlite:///{path}"), study_name="s")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    close_sqlite_storages()
    before = path.read_bytes()

    read_only = f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"
    reopened = optuna.load_study(study_name="s", storage=open_storage(read_only))
    assert [t.params for t in reopened.trials] == [t.params for t in study.trials]
    close_sqlite_storages()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["aaf.db"]  # no -wal or -shm file either


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def frozen(number: int, state: optuna.trial.TrialState, value: float | None = None) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(state=state, value=value)
    trial.number = number
    return trial


def test_progress_line_counts_and_best() -> None:
    stream = io.StringIO()
    clock = iter([0.0, 65.0, 3725.0]).__next__
    line = ProgressLine("zoo", target=4, stream=stream, clock=clock)
    line.update(frozen(0, optuna.trial.TrialState.COMPLETE, 0.8), running=1)
    line.update(frozen(1, optuna.trial.TrialState.PRUNED))
    assert stream.getvalue().splitlines() == [
        "zoo: 1/4 trials (1 complete, 0 pruned), 0 failed, 1 running, best 0.8000 (#0), 0:01:05",
        "zoo: 2/4 trials (1 complete, 1 pruned), 0 failed, 0 running, best 0.8000 (#0), 1:02:05",
    ]


def test_a_trial_start_is_shown_on_a_terminal_and_left_out_of_a_log() -> None:
    log, terminal = io.StringIO(), _Tty()
    for stream in (log, terminal):
        line = ProgressLine("zoo", target=2, stream=stream, clock=lambda: 0.0)
        line.started(running=1)
    assert log.getvalue() == ""
    shown = "zoo: 0/2 trials (0 complete, 0 pruned), 0 failed, 1 running, best -, 0:00:00"
    assert terminal.getvalue() == "\r\x1b[2K" + shown


def test_progress_line_rewrites_itself_on_a_terminal() -> None:
    stream = _Tty()
    line = ProgressLine("zoo", target=2, direction="minimize", stream=stream, clock=lambda: 0.0)
    line.update(frozen(0, optuna.trial.TrialState.COMPLETE, 0.5))
    line.update(frozen(1, optuna.trial.TrialState.COMPLETE, 0.3))
    line.note("trial 2 failed: loss is nan")
    line.close()
    assert stream.getvalue().count("\r\x1b[2K") == 3
    assert "best 0.3000 (#1)" in stream.getvalue() and stream.getvalue().endswith("loss is nan\n\n")
