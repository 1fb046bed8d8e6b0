"""``aaf-search studies``: one line per search study, its robustness companion counted in its line."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from aaf_search.cli import main

LR = {"opt/lr": FloatDistribution(1e-4, 1e-2)}


def add(study: optuna.Study, state: TrialState, values: list[float] | None = None) -> None:
    study.add_trial(
        create_trial(
            state=state,
            values=values,
            params={"opt/lr": 1e-3},
            distributions=LR,
            intermediate_values={1: 0.5} if state == TrialState.PRUNED else None,
        )
    )


def make_storage(url: str) -> None:
    zoo = optuna.create_study(study_name="zoo", storage=url, direction="maximize")
    zoo.set_user_attr("space", "trainable_zoo")
    zoo.set_user_attr("metric", "val_accuracy")
    zoo.set_user_attr("run_dir", str(Path("zoo-runs").resolve()))  # as its search recorded it
    Path("zoo-runs").mkdir()
    for values in ([0.91], [0.97], [0.97]):  # a tie: the earlier trial is the best, as export ranks
        add(zoo, TrialState.COMPLETE, values)
    add(zoo, TrialState.PRUNED)
    add(zoo, TrialState.FAIL)
    zoo.add_trial(create_trial(state=TrialState.RUNNING, params={}, distributions={}))
    robust = optuna.create_study(study_name="zoo:robust", storage=url, direction="maximize")
    for value in (0.95, 0.96):
        add(robust, TrialState.COMPLETE, [value])

    pareto = optuna.create_study(study_name="front", storage=url, directions=["maximize", "minimize"])
    pareto.set_user_attr("space", "apa_init")
    for values in ([0.9, 100.0], [0.95, 300.0], [0.85, 400.0]):  # the last is dominated by the first
        add(pareto, TrialState.COMPLETE, values)

    optuna.create_study(study_name="empty", storage=url)


def test_each_search_study_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_storage(url)
    assert main(["studies", "--storage", url]) == 0
    header, rule, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "study",
        "space",
        "complete",
        "pruned",
        "failed",
        "running",
        "best",
        "robust",
        "runs",
        "started",
        "run",
        "directory",
    ]
    assert set(rule) == {"-", " "}
    first = optuna.load_study(study_name="zoo", storage=url).trials[0].datetime_start
    assert first is not None
    assert [row.split()[:6] for row in rows] == [
        ["empty", "-", "0", "0", "0", "0"],
        ["front", "apa_init", "3", "0", "0", "0"],
        ["zoo", "trainable_zoo", "3", "1", "1", "1"],
    ]
    empty, front, zoo = rows
    assert empty.split()[6:] == ["-", "0", "-", "-"]  # no trials, no run directory
    assert front.split()[6:10] == ["Pareto", "front", "of", "2"] and front.split()[10] == "0"
    assert zoo.split()[6:10] == ["val_accuracy", "0.9700", "(trial", "1)"]
    assert zoo.split()[10] == "2"  # complete runs of zoo:robust
    assert zoo.split()[11:13] == first.strftime("%Y-%m-%d %H:%M").split()  # when its first trial started
    assert zoo.split()[13] == "zoo-runs"  # where its search wrote, relative to the current directory


def test_an_empty_storage_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(study_name="x", storage=url)
    optuna.delete_study(study_name="x", storage=url)
    assert main(["studies", "--storage", url]) == 0
    assert capsys.readouterr().out == f"no studies in {url}\n"


def test_a_storage_that_is_not_there_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert main(["studies", "--storage", url]) == 2
    assert capsys.readouterr().err.startswith("aaf-search: error: no storage at")
    assert not (tmp_path / "typo.db").exists()
