"""Continuing a study: only on the same task, only into its own run directory, whoever created it first."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import FakeRunner

from aaf_search.cli import main
from aaf_search.errors import UserError
from aaf_search.search import SearchSettings, driver, run_search, trial_seed
from aaf_search.search.storage import open_storage
from aaf_search.search.study import sessions

STORAGE = "sqlite:///runs/study.db"
JOURNAL = "journal:runs/journal.log"
RUN_DIR = Path("aaf-runs/trainable_zoo")


def settings(**changes: object) -> SearchSettings:
    base = {"space": "trainable_zoo", "trials": 1, "sampler": "random", "pruner": "none", "storage": STORAGE}
    return SearchSettings(**{**base, "epochs": 2, "seed": 7, **changes})  # type: ignore[arg-type]


def load(storage: str = STORAGE, name: str = "trainable_zoo") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def snapshot(study: optuna.Study) -> tuple[Any, ...]:
    return [(t.number, t.state, t.params) for t in study.get_trials()], study.user_attrs


# A study compares the scores of its trials, so another task must not continue it.


def test_another_model_dataset_or_epoch_budget_is_refused_naming_both(capsys: pytest.CaptureFixture[str]) -> None:
    run_search(settings(), runner=FakeRunner())
    before = snapshot(load())
    capsys.readouterr()

    code = main(["--space", "trainable_zoo", "--storage", STORAGE, "--model", "dnn2", "--dataset", "synthetic"])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        "aaf-search: error: study 'trainable_zoo' was searched with --model dnn3, --dataset digits, --epochs 2, "
        "not --model dnn2, --dataset synthetic, --epochs 4: their scores do not compare; use --study NEW_NAME "
        "for this search (or the study's own settings to continue it)\n"
    )
    assert snapshot(load()) == before  # not even a session record


def test_a_space_file_whose_metric_changed_does_not_feed_the_old_direction() -> None:
    # The study maximises val_accuracy; the same file now says val_loss, which is minimised.
    space = (
        "model: dnn2\nmetric: {}\nparams:\n  - {{name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.1}}\n"
    )
    Path("mine.yaml").write_text(space.format("val_accuracy"))
    run_search(settings(space="mine.yaml"), runner=FakeRunner())
    Path("mine.yaml").write_text(space.format("val_loss"))
    runner = FakeRunner()

    with pytest.raises(
        UserError, match=r"searched with metric val_accuracy \(maximize\), not metric val_loss \(minimize\)"
    ):
        run_search(settings(space="mine.yaml", trials=2), runner=runner)
    assert runner.configs == [] and len(load(name="mine").trials) == 1


def test_a_space_file_given_another_choice_is_refused_before_any_trial(capsys: pytest.CaptureFixture[str]) -> None:
    space = (
        "model: dnn2\nbase: {{plan: [{{select: all, activation: {{family: relu}}}}]}}\nparams:\n"
        "  - {{name: act/family, target: plan.0.activation.family, type: categorical, choices: [{}]}}\n"
    )
    Path("mine.yaml").write_text(space.format("coslu, relu"))
    run_search(settings(space="mine.yaml"), runner=FakeRunner())
    Path("mine.yaml").write_text(space.format("coslu, relu, sinlu"))
    before = snapshot(load(name="mine"))
    capsys.readouterr()

    code = main(["--space", "mine.yaml", "--storage", STORAGE, "--epochs", "2", "--trials", "3"])

    # Optuna fixes a categorical parameter's choices within a study: the first trial asking for the
    # new list would fail with a traceback and stay FAIL in the study.
    assert code == 2
    assert capsys.readouterr().err == (
        "aaf-search: error: study 'mine' sampled 'act/family' from choices [coslu, relu], and the space now "
        "samples it from choices [coslu, relu, sinlu]; Optuna keeps a study's categorical choices fixed: "
        "use --study NEW_NAME\n"
    )
    assert snapshot(load(name="mine")) == before


def test_trials_sampler_pruner_seed_backend_precision_and_data_root_may_change() -> None:
    run_search(settings(), runner=FakeRunner())
    stream = io.StringIO()
    changed = settings(trials=3, sampler="tpe", pruner="median", seed=8, precision="bf16", data_root="elsewhere")
    outcome = run_search(changed, runner=FakeRunner(), stream=stream)

    assert len(outcome.study.trials) == 3
    assert "note: study 'trainable_zoo' was started with --seed 7; continuing with it" in stream.getvalue()
    assert outcome.study.trials[2].user_attrs["seed"] == trial_seed(7, 2)


def test_the_task_is_recorded_when_the_study_is_created() -> None:
    study = run_search(settings(epochs=3), runner=FakeRunner()).study
    attrs = study.user_attrs
    assert (attrs["model"], attrs["dataset"], attrs["epochs"], attrs["metric"]) == ("dnn3", "digits", 3, "val_accuracy")
    assert [d.name for d in study.directions] == ["MAXIMIZE"]


def test_a_study_made_by_an_earlier_version_is_continued_without_the_task_check() -> None:
    # Earlier versions recorded the space, objectives, metric and seed, but not model, data set and epochs.
    study = optuna.create_study(storage=open_storage(STORAGE), study_name="trainable_zoo", direction="maximize")
    for key, value in {"objectives": ["accuracy"], "metric": "val_accuracy", "seed": 7, "settings": {}}.items():
        study.set_user_attr(key, value)
    study.set_user_attr("space", "trainable_zoo")

    outcome = run_search(settings(epochs=3, trials=1), runner=FakeRunner())
    assert len(outcome.study.trials) == 1
    assert "model" not in outcome.study.user_attrs  # the attrs a study was created with stay as they were


# trials/NNNN and best.yaml belong to one study; numbers restart at 0 in every study.


def test_a_same_named_study_in_another_storage_is_refused_the_run_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_search(settings(), runner=FakeRunner())
    best_before = (RUN_DIR / "best.yaml").read_text()
    capsys.readouterr()

    code = main(["--space", "trainable_zoo", "--storage", JOURNAL, "--epochs", "2"])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    database = Path("runs/study.db").resolve()
    assert err == (
        f"aaf-search: error: run directory 'aaf-runs/trainable_zoo' belongs to study 'trainable_zoo' in "
        f"sqlite:///{database}; use --out DIR or --study NEW_NAME, or move that directory away\n"
    )
    assert not Path("runs/journal.log").exists() or "trainable_zoo" not in Path("runs/journal.log").read_text()
    assert (RUN_DIR / "best.yaml").read_text() == best_before

    # Its own run directory: no conflict.
    outcome = run_search(settings(storage=JOURNAL, out=Path("aaf-runs/journal-zoo")), runner=FakeRunner())
    assert outcome.best_path == Path("aaf-runs/journal-zoo/best.yaml")


def test_a_study_made_again_under_its_name_does_not_take_the_old_run_directory() -> None:
    run_search(settings(), runner=FakeRunner())
    optuna.delete_study(study_name="trainable_zoo", storage=STORAGE)
    runner = FakeRunner()

    with pytest.raises(
        UserError, match=r"belongs to study 'trainable_zoo' in sqlite:///\S+ \(an earlier study of that name\)"
    ):
        run_search(settings(), runner=runner)
    assert runner.configs == []
    assert "trainable_zoo" not in optuna.get_all_study_names(STORAGE)  # refused before it was created


def test_the_run_directory_names_its_storage_and_study() -> None:
    study = run_search(settings(), runner=FakeRunner()).study
    marker = json.loads((RUN_DIR / "study.json").read_text())
    assert marker == {
        "storage": f"sqlite:///{Path('runs/study.db').resolve()}",
        "study": "trainable_zoo",
        "study_id": study._study_id,
        "uid": study.user_attrs["study_uid"],
    }


def test_a_run_directory_of_an_earlier_version_is_adopted_by_its_study_only() -> None:
    run_search(settings(), runner=FakeRunner())
    (RUN_DIR / "study.json").unlink()  # as earlier versions left it

    run_search(settings(trials=2), runner=FakeRunner())  # the study it belongs to continues
    assert json.loads((RUN_DIR / "study.json").read_text())["study"] == "trainable_zoo"

    (RUN_DIR / "study.json").unlink()
    optuna.delete_study(study_name="trainable_zoo", storage=STORAGE)
    with pytest.raises(UserError, match="holds the trials of an earlier study, and study 'trainable_zoo' is new"):
        run_search(settings(), runner=FakeRunner())


def test_an_empty_run_directory_is_taken_by_a_new_study() -> None:
    RUN_DIR.mkdir(parents=True)
    run_search(settings(), runner=FakeRunner())
    assert (RUN_DIR / "best.yaml").is_file() and (RUN_DIR / "study.json").is_file()


def test_a_study_continued_without_out_keeps_writing_into_the_run_directory_it_was_given() -> None:
    first = run_search(settings(out=Path("mine")), runner=FakeRunner())
    assert first.study.user_attrs["run_dir"] == str(Path("mine").resolve())

    stream, runner = io.StringIO(), FakeRunner()
    outcome = run_search(settings(trials=2), runner=runner, stream=stream)

    assert outcome.run_dir == Path("mine") and outcome.best_path == Path("mine/best.yaml")
    assert runner.out_dirs == [Path("mine/trials/0001")]
    assert not RUN_DIR.exists()
    assert "run directory" not in stream.getvalue()


def test_a_search_given_another_out_says_where_the_earlier_trials_are_and_records_the_new_one() -> None:
    run_search(settings(out=Path("first")), runner=FakeRunner())
    stream, runner = io.StringIO(), FakeRunner()

    run_search(settings(trials=2, out=Path("second")), runner=runner, stream=stream)

    assert "note: study 'trainable_zoo' wrote its earlier trials into first; this search writes into second\n" in (
        stream.getvalue()
    )
    assert load().user_attrs["run_dir"] == str(Path("second").resolve())
    assert runner.out_dirs == [Path("second/trials/0001")]
    # Every directory is kept, latest last, for reading the trials' weights wherever they went.
    assert load().user_attrs["run_dirs"] == [str(Path(name).resolve()) for name in ("first", "second")]
    run_search(settings(trials=3, out=Path("first")), runner=runner, stream=stream)
    assert load().user_attrs["run_dirs"] == [str(Path(name).resolve()) for name in ("second", "first")]


def test_a_recorded_run_directory_that_was_moved_away_falls_back_to_aaf_runs() -> None:
    run_search(settings(out=Path("mine")), runner=FakeRunner())
    Path("mine").rename("moved")
    stream = io.StringIO()

    outcome = run_search(settings(trials=2), runner=FakeRunner(), stream=stream)

    assert outcome.run_dir == RUN_DIR
    assert f"had its run directory in mine, which is not there any more; this search writes into {RUN_DIR}" in (
        stream.getvalue()
    )


@pytest.mark.parametrize(
    ("study", "directory"),
    [("../escaped", "___escaped"), ("/tmp/abs", "_tmp_abs"), ("a/b", "a_b"), ("lr:1e-3 x", "lr_1e-3_x")],
)
def test_a_study_name_that_is_no_directory_name_stays_under_aaf_runs(study: str, directory: str) -> None:
    outcome = run_search(settings(study=study), runner=FakeRunner())
    assert outcome.run_dir == Path("aaf-runs") / directory
    assert json.loads((outcome.run_dir / "study.json").read_text())["study"] == study
    assert sorted(p.name for p in Path("aaf-runs").iterdir()) == [directory]
    assert load(name=study).trials[0].state.name == "COMPLETE"


def test_two_study_names_that_share_a_directory_name_do_not_share_the_directory() -> None:
    run_search(settings(study="a/b"), runner=FakeRunner())
    with pytest.raises(UserError, match="run directory 'aaf-runs/a_b' belongs to study 'a/b'"):
        run_search(settings(study="a:b"), runner=FakeRunner())


# Two searches starting together on one shared study; only one of them creates it.


def another_search_creates_it_first(monkeypatch: pytest.MonkeyPatch, other: SearchSettings) -> None:
    """Between this search's look for the study and its creation, ``other`` creates it and runs a trial."""
    original = driver.check_compatible

    def look(*args: Any, **kwargs: Any) -> bool:
        monkeypatch.setattr(driver, "check_compatible", original)
        run_search(other, runner=FakeRunner(), stream=io.StringIO())
        return False  # what this search saw a moment earlier

    monkeypatch.setattr(driver, "check_compatible", look)


def test_a_search_that_loses_the_race_to_create_the_study_takes_the_winners_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    another_search_creates_it_first(monkeypatch, settings(storage=JOURNAL, seed=3))
    stream = io.StringIO()
    study = run_search(settings(storage=JOURNAL, seed=7, trials=2), runner=FakeRunner(), stream=stream).study

    assert study.user_attrs["seed"] == 3
    assert "was started with --seed 3; continuing with it" in stream.getvalue()
    assert [t.user_attrs["seed"] for t in study.trials] == [trial_seed(3, 0), trial_seed(3, 1)]
    assert len(sessions(study)) == 2


def test_a_search_that_loses_the_race_to_a_search_of_another_task_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    another_search_creates_it_first(monkeypatch, settings(storage=JOURNAL, epochs=2))
    runner = FakeRunner()
    with pytest.raises(UserError, match="searched with --epochs 2, not --epochs 5"):
        run_search(settings(storage=JOURNAL, epochs=5), runner=runner)
    assert runner.configs == [] and len(sessions(load(JOURNAL))) == 1
