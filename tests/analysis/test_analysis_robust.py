"""The robustness stage: top-K + baseline over seeds through the local backend (and the Ray backend's searcher),
resume, files, export, errors, and the owner every running robust trial records."""

from __future__ import annotations

import dataclasses
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher
from small_study import FAKE_THREADS, REAL_SEEDS, REAL_STUDY, FakeRunner, fake_accuracy, fake_search, real_study

from aaf_search.analysis.robust import Candidate, plan_runs, run_robust
from aaf_search.analysis.robust_settings import RobustSettings, parse_seeds
from aaf_search.analysis.robust_table import ROBUST_COLUMNS, conclude
from aaf_search.cli import main
from aaf_search.config import PretrainConfig, TrialConfig, load_yaml
from aaf_search.errors import UserError
from aaf_search.search import ray_trainable as wire
from aaf_search.search.liveness import is_stale, owner_record
from aaf_search.search.ray_backend import RayBackend
from aaf_search.search.ray_searcher import StudySearcher
from aaf_search.search.session import SearchSession
from aaf_search.search.storage import open_storage
from aaf_search.search.study import running_trials
from aaf_search.trials import checkpoint
from aaf_search.trials.report import EpochReport, TrialDiverged, TrialResult
from aaf_search.trials.runner import run_trial

STORAGE = "journal:runs/study.log"  # a journal file: several times faster than SQLite's commit per attr


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return tmp_path


def robust(runner: FakeRunner, **changes: object) -> RobustSettings:
    settings = {"storage": STORAGE, "top_k": 2, "seeds": (1, 2), "backend": "local", **changes}
    return RobustSettings(**settings)  # type: ignore[arg-type]


def companion_trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=f"{study}:robust", storage=open_storage(url)).get_trials(deepcopy=False)


@dataclass
class DivergingRunner(FakeRunner):
    """The fake runner, diverging in the first epoch of the (0-based) calls it lists."""

    diverge_calls: frozenset[int] = frozenset()

    def __call__(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        if len(self.configs) in self.diverge_calls:
            self.configs.append(config)
            raise TrialDiverged(1, "loss is nan")
        return super().__call__(config, **kwargs)


def drive_like_ray(session: SearchSession, slots: int = 2) -> None:
    """Ray Tune's loop around the searcher, in miniature: fill the free slots, then end the oldest trial.

    A trial "runs" as ray_trainable.train_trial would on a worker: its final result, or ``failed``.
    """
    searcher = StudySearcher(session, threads=1, workdir=Path.cwd())
    running: list[tuple[str, dict[str, Any]]] = []
    for number in range(100):
        trial_id = f"t{number}"
        config = searcher.suggest(trial_id) if len(running) < slots else None
        if config == Searcher.FINISHED:
            return
        if isinstance(config, dict):
            running.append((trial_id, config))
            continue
        trial_id, config = running.pop(0)
        try:
            result = wire.final_metrics(session.runner(TrialConfig.from_dict(config[wire.CONFIG_KEY])))
        except TrialDiverged as exc:
            result = {wire.FAILED: str(exc)}
        searcher.on_trial_complete(trial_id, result=result)
    raise AssertionError("the searcher never said FINISHED")


class SpreadRunner(FakeRunner):
    """Seed 1 scores 100 %, seed 2 scores 60 %: a spread whose t interval reaches far past 100 %."""

    def __call__(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        result = super().__call__(config, **kwargs)
        return dataclasses.replace(result, val_accuracy=1.0 if config.seed == 1 else 0.6)


def test_an_accuracys_interval_stays_within_0_and_100_percent() -> None:
    fake_search(STORAGE, trials=2)
    runner = SpreadRunner()
    result, _ = conclude(run_robust(robust(runner, top_k=1), runner=runner, stream=io.StringIO()))
    row = result.table.iloc[1]
    assert (row["seed_1"], row["seed_2"], row["mean"]) == (1.0, 0.6, pytest.approx(0.8))
    # 0.8 ± 12.71 · 0.283 / √2 would be [-1.74, 3.34]
    assert (row["ci_low"], row["ci_high"]) == (0.0, 1.0)


def test_a_failed_seed_run_with_the_ray_searcher_is_recorded_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_search(STORAGE, trials=2)
    monkeypatch.setattr(RayBackend, "run", lambda self, session: drive_like_ray(session))
    runner = DivergingRunner(diverge_calls=frozenset({0}))  # the baseline under seed 1
    outcome = run_robust(robust(runner, top_k=1, backend="ray"), runner=runner, stream=io.StringIO())

    # Baseline and the best configuration, under seeds 1 and 2: four runs, the failed one not run again.
    assert (outcome.ran, len(runner.configs)) == (4, 4)
    trials = companion_trials(STORAGE, "lincomb_bases")
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert trials[0].user_attrs["fail_reason"] == "trial diverged at epoch 1: loss is nan"


def test_a_running_robust_trial_is_owned_so_another_process_leaves_it_alone(capsys: pytest.CaptureFixture[str]) -> None:
    url = "sqlite:///runs/study.db"  # SQLite takes one writer: a second run on the study is refused
    fake_search(url, trials=1)
    seen: dict[str, Any] = {}

    def look_from_another_process(config: TrialConfig, **kwargs: Any) -> TrialResult:
        if not seen:  # while the first run trains
            [trial] = running_trials(open_storage(url), "lincomb_bases:robust")
            seen["owner"] = trial.user_attrs.get("owner")
            seen["stale two minutes on"] = is_stale(trial.user_attrs, trial.datetime_start, now=time.time() + 120)
            seen["second run"] = main(["robust", "--storage", url, "--top-k", "1", "--backend", "local"])
        return runner(config, **kwargs)

    runner = FakeRunner()
    run_robust(robust(runner, storage=url, top_k=1), runner=look_from_another_process, stream=io.StringIO())
    assert seen == {"owner": owner_record(), "stale two minutes on": False, "second run": 2}
    assert "study 'lincomb_bases:robust' is being searched right now by pid" in capsys.readouterr().err
    assert all("heartbeat" in t.user_attrs for t in companion_trials(url, "lincomb_bases"))


def test_top_k_and_baseline_over_seeds_with_hand_values() -> None:
    search = fake_search(STORAGE, trials=4)
    study = optuna.load_study(study_name="lincomb_bases", storage=open_storage(STORAGE))
    top = sorted(study.trials, key=lambda t: (-t.value, t.number))[:2]
    runner = FakeRunner()
    result, written = conclude(run_robust(robust(runner), runner=runner, stream=io.StringIO()))

    # seed-major order: baseline, #best, #second under seed 1, then the same under seed 2
    best_config = search.configs[top[0].number]
    assert [(c.seed, len(c.plan)) for c in runner.configs] == [(1, 0), (1, 1), (1, 1), (2, 0), (2, 1), (2, 1)]
    assert runner.configs[0] == best_config.replace(plan=(), seed=1)  # the baseline: best's model/data/optim, no plan
    assert runner.configs[1] == best_config.replace(seed=1)
    trials = companion_trials(STORAGE, "lincomb_bases")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert [(t.user_attrs["label"], t.user_attrs["seed"]) for t in trials][:3] == [
        ("baseline", 1),
        (f"#{top[0].number}", 1),
        (f"#{top[1].number}", 1),
    ]
    assert trials[1].user_attrs["source_trial"] == top[0].number
    assert trials[1].user_attrs["config"] == best_config.replace(seed=1).to_dict()

    table = pd.read_csv(written[0])
    assert list(table.columns) == [*ROBUST_COLUMNS, "seed_1", "seed_2"]
    assert list(table["label"]) == ["baseline", f"#{top[0].number}", f"#{top[1].number}"]
    assert table["family"].iloc[0] == "relu"  # the baseline, by the activation it keeps in every slot
    assert set(table["family"].iloc[1:]) <= {"lincomb", "normlincomb"}
    row = table.iloc[1]
    scores = [fake_accuracy(best_config.replace(seed=s), 2) for s in (1, 2)]  # seed % 3 / 100 apart
    assert (row["seed_1"], row["seed_2"]) == pytest.approx(scores)
    assert row["mean"] == pytest.approx(sum(scores) / 2)
    assert row["worst"] == pytest.approx(min(scores))
    assert row["search_value"] == pytest.approx(top[0].value)
    # Every seed beats the baseline by the same 0.05 (the plan's bonus): d_z and the t-test are undefined.
    assert row["mean_diff"] == pytest.approx(0.05)
    assert "sd 0" in row["note"]
    # The robust best has the higher mean over seeds 1 and 2. The search ranked by each trial's own seed,
    # whose term (up to 0.02) can outweigh a small lr difference: the proposals depend on the process
    # (a journal storage mixes host:pid into the sampler seed), so τ is 1 or -1 by hand, not always 1.
    means = {t.number: sum(fake_accuracy(search.configs[t.number].replace(seed=s), 2) for s in (1, 2)) for t in top}
    robust_first = max(means, key=means.__getitem__)
    assert result.best.config == f"#{robust_first}"
    assert result.tau.tau == pytest.approx(1.0 if robust_first == top[0].number else -1.0)
    for trial in trials:  # the CSV holds exactly the companion's values
        label_row = table[table["label"] == trial.user_attrs["label"]].iloc[0]
        assert label_row[f"seed_{trial.user_attrs['seed']}"] == pytest.approx(trial.value)

    companion = optuna.load_study(study_name="lincomb_bases:robust", storage=open_storage(STORAGE))
    assert companion.user_attrs["robust_best"]["config"] == f"#{robust_first}"
    assert [r["label"] for r in companion.user_attrs["robust_summary"]] == list(table["label"])
    storage = open_storage(STORAGE)
    note = storage.get_study_system_attrs(storage.get_study_id_from_name("lincomb_bases:robust"))
    assert any("Seed robustness" in str(value) for value in note.values())  # the dashboard's study note


def test_rerun_reuses_complete_pairs_and_runs_only_new_seeds() -> None:
    fake_search(STORAGE, trials=3)
    first = FakeRunner()
    run_robust(robust(first), runner=first, stream=io.StringIO())
    again = FakeRunner()
    outcome = run_robust(robust(again), runner=again, stream=io.StringIO())
    assert (len(first.configs), len(again.configs), outcome.ran, outcome.reused) == (6, 0, 0, 6)
    more, stream = FakeRunner(), io.StringIO()
    outcome = run_robust(robust(more, seeds=(1, 2, 3)), runner=more, stream=stream)
    assert ([c.seed for c in more.configs], outcome.reused) == ([3, 3, 3], 6)
    progress = [line for line in stream.getvalue().splitlines() if " trials (" in line]
    assert progress[0].startswith("lincomb_bases:robust: 6/9 trials (6 complete, 0 pruned), 0 failed, 0 running")
    assert len(progress) == 4  # as the runs start, then one per run
    assert len(companion_trials(STORAGE, "lincomb_bases")) == 9


def test_robustness_runs_of_a_search_run_with_out_go_into_that_directory() -> None:
    fake_search(STORAGE, trials=2, out=Path("mine"))
    runner = FakeRunner()

    outcome = run_robust(robust(runner, top_k=1), runner=runner, stream=io.StringIO())
    _, written = conclude(outcome)

    assert outcome.out == Path("mine/robust") and Path("mine/robust/robust.csv") in written
    assert not Path("aaf-runs").exists()


def test_each_seed_trains_its_own_base_model_shared_by_the_candidates() -> None:
    swap = TrialConfig(model="dnn2", pretrain=PretrainConfig(epochs=1, seed=0))
    chosen = [Candidate("#0", 0, swap, 0.9), Candidate("#1", 1, swap.replace(base_activation="silu"), 0.8)]
    runs = plan_runs(chosen, seeds=(42, 100), epochs=None)
    assert [(r.candidate.label, r.seed, r.config.seed, r.config.pretrain.seed) for r in runs] == [
        ("#0", 42, 42, 42),
        ("#1", 42, 42, 42),
        ("#0", 100, 100, 100),
        ("#1", 100, 100, 100),
    ]


def test_a_single_seed_runs_with_a_note_that_statistics_need_two() -> None:
    fake_search(STORAGE, trials=2)
    runner = FakeRunner()
    stream = io.StringIO()
    run_robust(robust(runner, top_k=1, seeds=(5,)), runner=runner, stream=stream)
    assert [c.seed for c in runner.configs] == [5, 5]  # seed 5, not five seeds
    assert "note: --seeds names one seed (5); confidence intervals and tests need at least two" in stream.getvalue()


def test_export_robust_round_trip() -> None:
    fake_search(STORAGE, trials=3)
    runner = FakeRunner()
    result, _ = conclude(run_robust(robust(runner), runner=runner, stream=io.StringIO()))
    assert main(["export", "--robust", "--storage", STORAGE, "--out", "robust.yaml"]) == 0
    config, meta = load_yaml("robust.yaml")
    best = result.table[result.table["label"] == result.best.config].iloc[0]
    first_seed = next(
        t
        for t in companion_trials(STORAGE, "lincomb_bases")
        if (t.user_attrs["label"], t.user_attrs["seed"]) == (result.best.config, 1)
    )
    assert config.to_dict() == first_seed.user_attrs["config"]  # the robust best as trained under the first seed
    assert meta["scores"] == [
        {"seed": 1, "score": pytest.approx(best["seed_1"])},
        {"seed": 2, "score": pytest.approx(best["seed_2"])},
    ]
    assert meta["score"] == pytest.approx(best["mean"])
    assert meta["trial_number"] == best["source_trial"]
    assert meta["cpu_threads"] == FAKE_THREADS  # so train --config retrains with the run's thread count
    assert meta["baseline_diff"] == pytest.approx(best["mean_diff"])
    assert meta["baseline_diff_ci"] == [pytest.approx(best["diff_ci_low"]), pytest.approx(best["diff_ci_high"])]


@pytest.mark.parametrize("verb", ["export", "report", "robust"])
def test_the_robustness_study_is_not_taken_for_a_search(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    fake_search(STORAGE, trials=3)
    runner = FakeRunner()
    run_robust(robust(runner), runner=runner, stream=io.StringIO())
    assert main([verb, "--storage", STORAGE, "--study", "lincomb_bases:robust"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "aaf-search: error: study 'lincomb_bases:robust' holds the robustness runs of study 'lincomb_bases'; "
        "use --study lincomb_bases"
    )
    assert "lincomb_bases:robust:robust" not in optuna.get_all_study_names(open_storage(STORAGE))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope"], "no study 'nope' in the storage; studies: lincomb_bases"),
        (["--top-k", "0"], "--top-k must be >= 1, got 0"),
        (["--seeds", "42,x"], "--seeds must be comma-separated integers like 42,100,128; got '42,x'"),
        (["--seeds", "42,42"], "--seeds names a seed twice"),
        (["--baseline", "nope"], "unknown --baseline activation 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    fake_search(STORAGE, trials=1)
    assert main(["robust", "--storage", STORAGE, "--backend", "local", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_export_robust_before_any_robust_run(capsys: pytest.CaptureFixture[str]) -> None:
    fake_search(STORAGE, trials=1)
    assert main(["export", "--robust", "--storage", STORAGE]) == 2
    assert "has no robustness results; run aaf-search robust first" in capsys.readouterr().err


def test_parse_seeds() -> None:
    assert parse_seeds("42, 100,128") == (42, 100, 128)
    with pytest.raises(UserError, match="non-negative"):
        parse_seeds("-1")


@pytest.mark.slow
def test_real_search_robust_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = real_study(tmp_path)
    trials = companion_trials(url, REAL_STUDY)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    table = pd.read_csv(tmp_path / "robust" / "robust.csv")
    assert list(table.columns) == [*ROBUST_COLUMNS, *(f"seed_{s}" for s in REAL_SEEDS)]
    for trial in trials:
        row = table[table["label"] == trial.user_attrs["label"]].iloc[0]
        assert row[f"seed_{trial.user_attrs['seed']}"] == pytest.approx(trial.value)
    assert (table["n"] == 2).all()

    args = ["robust", "--storage", url, "--top-k", "2", "--seeds", "1,2", "--backend", "local"]
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "ran 0, reused 6" in out
    assert f"figure: aaf-search report --study {REAL_STUDY} --storage {url}  (robust.png" in out
    assert len(companion_trials(url, REAL_STUDY)) == 6
    again = pd.read_csv(tmp_path / "again" / "robust.csv")
    pd.testing.assert_frame_equal(again, table)
    print(out)  # the readable table, for the record (pytest -s shows it)


@pytest.mark.slow  # real training: 3-epoch DNN2 runs on digits
def test_an_interrupted_seed_run_carries_on_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "SAVE_TIME_SHARE", math.inf)  # a save every epoch: these take milliseconds
    url = real_study(tmp_path)
    settings = RobustSettings(storage=url, top_k=1, seeds=(7,), backend="local", out=tmp_path / "robust7", epochs=3)

    def ctrl_c_after_epoch_1(config: TrialConfig, **kwargs: Any) -> TrialResult:
        def on_epoch(report: EpochReport) -> None:
            kwargs["on_epoch"](report)
            raise KeyboardInterrupt  # the first run (the baseline under seed 7), once epoch 1 is saved

        return run_trial(config, on_epoch=on_epoch, out_dir=kwargs["out_dir"], resumable=True)

    with pytest.raises(KeyboardInterrupt):
        run_robust(settings, runner=ctrl_c_after_epoch_1, stream=io.StringIO())
    stream = io.StringIO()
    outcome = run_robust(settings, stream=stream)  # the same command again, with the real runner

    # The companion holds the real study's 6 runs (seeds 1 and 2); seed 7's baseline is trial 6, then 7.
    assert "trial 7 carries on from epoch 1 of an interrupted run of its config" in stream.getvalue()
    trials = companion_trials(url, REAL_STUDY)[6:]
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    interrupted, carried_on = trials[0], trials[1]
    assert carried_on.user_attrs["config"] == interrupted.user_attrs["config"]
    config = TrialConfig.from_dict(carried_on.user_attrs["config"])
    uninterrupted = run_trial(config)
    assert carried_on.value == uninterrupted.val_accuracy
    # It reported every epoch (the checkpoint's first), and its history holds them all.
    assert carried_on.intermediate_values == {r.epoch: r.val_accuracy for r in uninterrupted.history}
    assert carried_on.user_attrs["history"] == [r.val_accuracy for r in uninterrupted.history]
    assert outcome.ran == 2
