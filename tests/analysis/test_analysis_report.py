"""``aaf-search report``: every table and figure from the storage alone, notes for what it cannot draw."""

from __future__ import annotations

import dataclasses
import errno
import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from matplotlib.figure import Figure
from small_study import FakeRunner, PlannedRunner, fake_search, real_study
from test_analysis_figures import _assert_png

from aaf_search.analysis import report as report_module
from aaf_search.cli import main
from aaf_search.config import TrialConfig
from aaf_search.search.storage import open_storage
from aaf_search.trials.report import TrialResult

ROWS = {"trials": 4, "leaderboard": 1, "robust": 3}  # 4 trials, all of one family here; top-2 + baseline
TABLES = {
    "trials": ["number", "state", "value", "last_reported", "family", "epochs_run", "test_accuracy", "act/family"],
    "leaderboard": ["family", "trials", "complete", "pruned", "failed", "best", "median", "best_trial"],
    "robust": ["config", "family", "mean ± std (%)", "95% CI", "worst", "n", "p (t)", "p (Wilcoxon)"],
}
FIGURES = ("history", "importances", "families", "robust", "curves", "shapes", "trajectories", "learned")


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_report_of_a_real_search_writes_every_table_and_figure(tmp_path: Path) -> None:
    url = real_study(tmp_path)
    out = tmp_path / "report"
    assert main(["report", "--storage", url, "--out", str(out), "--svg", "--runs", str(tmp_path / "runs")]) == 0

    for name, columns in TABLES.items():
        table = pd.read_csv(out / f"{name}.csv")
        assert set(columns) <= set(table.columns), (name, list(table.columns))
        assert len(table) == ROWS[name]
        assert (out / f"{name}.md").read_text().startswith("| ")
        assert r"\begin{tabular}" in (out / f"{name}.tex").read_text()
    trials = pd.read_csv(out / "trials.csv")
    assert set(trials["family"]) <= {"lincomb", "normlincomb"}
    assert (trials["state"] == "COMPLETE").sum() >= 2  # importances need two
    for name in FIGURES:
        _assert_png([out / f"{name}.png"])
        assert (out / f"{name}.svg").stat().st_size > 5_000
    index = (out / "index.md").read_text()
    assert "- space: lincomb_bases" in index
    assert "- robust best: " in index
    for name in FIGURES:
        assert f"![{name}]({name}.png)" in index
    for name in TABLES:
        assert f"[csv]({name}.csv)" in index
    assert "## Notes" not in index  # nothing skipped


def test_a_one_trial_study_skips_what_needs_more_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    fake_search("journal:runs/study.log", trials=1)
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    index = Path("report/index.md").read_text()
    assert "importances: skipped, parameter importances need 2+ complete trials, the study has 1" in index
    assert "robust: no robustness table or figure yet" in index
    assert "- robust best: not computed (run aaf-search robust)" in index
    assert "- learned: skipped, trial 0 saved no weights in 'aaf-runs/lincomb_bases/trials/0000'" in index
    # The fake's LinComb learned w = (0.5, 0.5, ...): shapes and trajectories are drawn from the study alone.
    _assert_png([Path("report/shapes.png")])
    _assert_png([Path("report/trajectories.png")])
    assert "2 tables, 5 figures" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("space", "selector", "first"),
    [
        # kerasnet, which needs inputs of 10x10 and up: digits are 8x8
        ("placement", "tag:conv", {"act/conv/family": "coslu"}),
        ("lslu_depth", "tag:stem", {"act/placement": "all"}),  # vanillanet, 32x32 and up
    ],
)
def test_a_study_on_a_model_that_digits_are_resized_for_gets_its_shapes(
    space: str, selector: str, first: dict[str, str]
) -> None:
    # The report resolves the plan's tag selectors on the model built at the size the trials trained at.
    # The first trial is enqueued with a tag selector: on a journal the sampler's draws differ per process.
    runner = fake_search("journal:runs/study.log", trials=3, space=space, runner=PlannedRunner(), enqueue=(first,))
    assert any(entry.select == selector for config in runner.configs for entry in config.plan)
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    _assert_png([Path("report/shapes.png")])
    _assert_png([Path("report/trajectories.png")])
    _assert_png([Path("report/learned.png")])  # from the trial's saved weights, the model rebuilt at that size
    index = Path("report/index.md").read_text()
    assert "- activation shapes, trajectories and learned activations: trial " in index
    assert "skipped" not in index


def test_learned_activations_are_read_only_from_the_studys_own_run_directory() -> None:
    fake_search("journal:runs/study.log", trials=1, space="lslu_depth", runner=PlannedRunner())
    other = Path("other")  # the run directory of another study, as its marker says
    other.mkdir()
    marker = {"storage": "journal:x", "study": "x", "study_id": 0, "uid": "0" * 32}
    (other / "study.json").write_text(json.dumps(marker))
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report", "--runs", "other"]) == 0
    index = Path("report/index.md").read_text()
    assert "- learned: skipped, run directory 'other' holds another study's trials" in index
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report", "--runs", "nowhere"]) == 0
    index = Path("report/index.md").read_text()
    assert (
        "- learned: skipped, no run directory 'nowhere' with the trials' weights (--runs names the search's)" in index
    )
    # By default the search's own, aaf-runs/<study>, where the trial saved its weights.
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    _assert_png([Path("report/learned.png")])
    assert "learned: skipped" not in Path("report/index.md").read_text()


def test_the_report_of_a_search_run_with_out_goes_into_that_directory_and_reads_its_weights() -> None:
    fake_search("journal:runs/study.log", trials=1, space="lslu_depth", runner=PlannedRunner(), out=Path("mine"))

    assert main(["report", "--storage", "journal:runs/study.log"]) == 0

    _assert_png([Path("mine/report/learned.png")])
    assert "learned: skipped" not in Path("mine/report/index.md").read_text()
    assert not Path("aaf-runs").exists()

    # --runs names where the weights are read from, not where the report goes.
    assert main(["report", "--storage", "journal:runs/study.log", "--runs", "elsewhere"]) == 0
    assert "no run directory 'elsewhere'" in Path("mine/report/index.md").read_text()
    assert not Path("elsewhere").exists()


def test_the_report_finds_the_best_trials_weights_in_the_directory_an_earlier_search_wrote_into() -> None:
    def search(trials: int, out: str, lr: float) -> None:
        point = ({"opt/lr": lr},)
        fake_search(
            "journal:runs/study.log",
            trials=trials,
            space="lslu_depth",
            runner=PlannedRunner(),
            out=Path(out),
            enqueue=point,
        )

    # Trial 0, in first/, scores best: the fake's accuracy grows with the learning rate.
    search(1, "first", lr=0.009)
    search(2, "second", lr=0.0002)

    assert main(["report", "--storage", "journal:runs/study.log"]) == 0

    index = Path("second/report/index.md").read_text()  # the report goes into the latest directory
    assert "- activation shapes, trajectories and learned activations: trial 0" in index
    assert "learned: skipped" not in index
    _assert_png([Path("second/report/learned.png")])

    shutil.rmtree("first/trials/0000")
    assert main(["report", "--storage", "journal:runs/study.log"]) == 0
    index = Path("second/report/index.md").read_text()
    assert "- learned: skipped, trial 0 saved no weights in 'second/trials/0000' or 'first/trials/0000'" in index


class CostlyRunner(FakeRunner):
    """Parameters grow with the learning rate, as the fake accuracy does: a real trade-off."""

    def __call__(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        return dataclasses.replace(super().__call__(config, **kwargs), param_count=round(1e6 * config.optim.lr))


def test_a_study_of_several_objectives_gets_its_pareto_front() -> None:
    fake_search("journal:runs/study.log", trials=6, objectives=("accuracy", "params"), runner=CostlyRunner())
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    trials = pd.read_csv("report/trials.csv")
    assert list(trials.columns[9:11]) == ["params", "pareto"]  # after the common columns
    points = list(zip(trials["value"], trials["params"], strict=True))
    beaten = [any(a >= v and p <= q and (a, p) != (v, q) for a, p in points) for v, q in points]
    assert list(trials["pareto"]) == [not b for b in beaten]
    assert trials["pareto"].sum() >= 2
    _assert_png([Path("report/pareto.png")])
    assert "![pareto](pareto.png)" in Path("report/index.md").read_text()


def test_the_index_names_the_pruner_the_search_chose() -> None:
    fake_search("journal:runs/study.log", trials=1, pruner=None)  # no --pruner: asha, for one objective
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    index = Path("report/index.md").read_text()
    assert "- budget: 1 trial of 2 epochs, sampler random, pruner asha, val_accuracy (maximize)" in index


def test_the_index_gives_the_budget_of_the_latest_search() -> None:
    fake_search("journal:runs/study.log", trials=1, pruner=None)
    fake_search("journal:runs/study.log", trials=3, pruner="none")  # continued to 3 trials, unpruned
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    index = Path("report/index.md").read_text()
    assert "- budget: 3 trials of 2 epochs, sampler random, pruner none, val_accuracy (maximize)" in index
    assert "- trials: 3 (3 complete)" in index


def test_the_index_claims_only_the_figures_it_drew(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_search("journal:runs/study.log", trials=1)
    # A trial that stored its learned parameters but no per-epoch history of them: shapes, no trajectories.
    monkeypatch.setattr(report_module, "trajectories_frame", lambda *_: pd.DataFrame())
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    index = Path("report/index.md").read_text()
    assert "- activation shapes: trial 0\n" in index
    assert "trajectories: skipped, no complete trial learned activation parameters with a per-epoch history" in index
    assert not Path("report/trajectories.png").exists()


def test_report_on_a_full_disk_keeps_the_previous_files_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_search("journal:runs/study.log", trials=3)
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 0
    before = {path: path.read_bytes() for path in Path("report").rglob("*") if path.is_file()}
    assert Path("report/index.md") in before and any(path.suffix == ".png" for path in before)
    capsys.readouterr()

    def save_part_then_fail(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        Path(fname).write_bytes(b"\x89PNG the first bytes")
        raise OSError(errno.ENOSPC, "No space left on device", str(fname))

    monkeypatch.setattr(Figure, "savefig", save_part_then_fail)
    assert main(["report", "--storage", "journal:runs/study.log", "--out", "report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aaf-search: error: no space left on the device writing 'report/")
    assert err.count("\n") == 1 and "Traceback" not in err
    after = {path: path.read_bytes() for path in Path("report").rglob("*") if path.is_file()}
    assert after == before  # every file as the first report wrote it, and no temporary file left


def test_unknown_study_lists_the_search_studies(capsys: pytest.CaptureFixture[str]) -> None:
    fake_search("journal:runs/study.log", trials=1)
    # A robustness companion is no study to report on (the report refuses it): it is not listed.
    optuna.create_study(storage=open_storage("journal:runs/study.log"), study_name="lincomb_bases:robust")
    assert main(["report", "--storage", "journal:runs/study.log", "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "aaf-search: error: no study 'nope' in the storage; studies: lincomb_bases\n"


def test_missing_storage_file_is_not_created(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--storage", "sqlite:///nowhere.db"]) == 2
    assert "no storage at 'nowhere.db'" in capsys.readouterr().err
    assert not Path("nowhere.db").exists()
