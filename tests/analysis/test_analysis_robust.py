"""The robustness stage: top-K + baseline over seeds through the local backend, resume, files, export, errors."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from small_study import FAKE_THREADS, REAL_SEEDS, REAL_STUDY, FakeRunner, fake_accuracy, fake_search, real_study

from aaf_search.analysis.robust import RobustSettings, parse_seeds, run_robust
from aaf_search.analysis.robust_table import ROBUST_COLUMNS, conclude
from aaf_search.cli import main
from aaf_search.config import load_yaml
from aaf_search.errors import UserError
from aaf_search.search.storage import open_storage

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
    more = FakeRunner()
    outcome = run_robust(robust(more, seeds=(1, 2, 3)), runner=more, stream=io.StringIO())
    assert ([c.seed for c in more.configs], outcome.reused) == ([3, 3, 3], 6)
    assert len(companion_trials(STORAGE, "lincomb_bases")) == 9


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
    assert len(companion_trials(url, REAL_STUDY)) == 6
    again = pd.read_csv(tmp_path / "again" / "robust.csv")
    pd.testing.assert_frame_equal(again, table)
    print(out)  # the readable table, for the record (pytest -s shows it)
