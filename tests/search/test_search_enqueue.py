"""``--enqueue``: known configurations run first, checked against the space, never enqueued twice."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from conftest import FakeRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from aaf_search.cli import main
from aaf_search.errors import UserError
from aaf_search.search import SearchSettings, run_search
from aaf_search.search.enqueue import enqueue_points, parse_point, resolve_points
from aaf_search.search.storage import open_storage

STORAGE = "sqlite:///runs/study.db"
DISTRIBUTIONS = {
    "act/family": CategoricalDistribution(["relu", "coslu"]),
    "act/trainable": CategoricalDistribution([True, False]),
    "act/n": IntDistribution(1, 4),
    "act/k": IntDistribution(2, 8, step=2),
    "act/kappa": FloatDistribution(0.5, 1.5, step=0.25),
    "opt/lr": FloatDistribution(1e-4, 1e-2, log=True),
}


def test_a_point_is_name_value_pairs() -> None:
    assert parse_point("act/family=coslu, opt/lr = 0.001") == {"act/family": "coslu", "opt/lr": "0.001"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("act/family", "expected NAME=VALUE pairs separated by commas"),
        ("act/family=coslu,", "expected NAME=VALUE pairs separated by commas"),
        ("=coslu", "expected NAME=VALUE pairs separated by commas"),
        ("opt/lr=0.1,opt/lr=0.2", "parameter 'opt/lr' is given twice"),
    ],
)
def test_a_malformed_point_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_point(text)


def test_values_take_the_type_of_their_distribution() -> None:
    text = {"act/family": "coslu", "act/trainable": "false", "act/n": "3", "act/k": "6", "act/kappa": "1.25"}
    (point,) = resolve_points([{**text, "opt/lr": "1e-3"}], DISTRIBUTIONS)
    assert point == {
        "act/family": "coslu",
        "act/trainable": False,
        "act/n": 3,
        "act/k": 6,
        "act/kappa": 1.25,
        "opt/lr": 0.001,
    }
    assert type(point["act/n"]) is int
    # A Python caller's typed values pass as they are.
    assert resolve_points([{"act/trainable": True, "opt/lr": 0.005}], DISTRIBUTIONS) == [
        {"act/trainable": True, "opt/lr": 0.005}
    ]


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"act/famly": "coslu"}, "the space has no parameter 'act/famly'; its parameters: act/family, act/trainable"),
        ({"act/family": "cosslu"}, "parameter 'act/family' has no choice 'cosslu'; its choices: relu, coslu"),
        ({"act/trainable": "yes"}, "parameter 'act/trainable' has no choice 'yes'; its choices: True, False"),
        ({"act/n": "5"}, "parameter 'act/n' must be an integer in 1..4, got '5'"),
        ({"act/n": "2.5"}, "parameter 'act/n' must be an integer in 1..4, got '2.5'"),
        ({"act/k": "5"}, "parameter 'act/k' must be an integer in 2..8 in steps of 2, got '5'"),
        ({"act/kappa": "1.1"}, "parameter 'act/kappa' must be a number in 0.5..1.5 in steps of 0.25, got '1.1'"),
        ({"opt/lr": "0.1"}, "parameter 'opt/lr' must be a number in 0.0001..0.01, got '0.1'"),
        ({"opt/lr": "fast"}, "parameter 'opt/lr' must be a number in 0.0001..0.01, got 'fast'"),
        ({"opt/lr": "nan"}, "parameter 'opt/lr' must be a number in 0.0001..0.01, got 'nan'"),
        ({"act/n": True}, "parameter 'act/n' must be an integer in 1..4, got 'True'"),
        ({"act/n": 2.5}, "parameter 'act/n' must be an integer in 1..4, got '2.5'"),
    ],
)
def test_a_value_the_space_cannot_take_is_refused(point: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=f"^--enqueue: {message}"):
        resolve_points([point], DISTRIBUTIONS)


def settings(trials: int, *points: str) -> SearchSettings:
    return SearchSettings(
        space="trainable_zoo",
        trials=trials,
        sampler="tpe",
        pruner="none",
        storage=STORAGE,
        epochs=1,
        enqueue=tuple(parse_point(point) for point in points),
    )


def test_enqueued_configurations_run_first_and_only_once() -> None:
    points = ("act/family=coslu,opt/lr=0.001", "act/family=delu")
    stream = io.StringIO()
    study = run_search(settings(3, *points), runner=FakeRunner(), stream=stream).study
    assert "note: enqueued 2 configuration(s) to run first" in stream.getvalue()
    first, second, third = study.trials
    assert first.params == {"act/family": "coslu", "opt/lr": 0.001}
    # A parameter left out is sampled.
    assert second.params["act/family"] == "delu" and 1e-4 <= second.params["opt/lr"] <= 1e-2
    assert "fixed_params" not in third.system_attrs  # the sampler's own proposal
    assert study.user_attrs["settings"]["enqueue"] == [
        {"act/family": "coslu", "opt/lr": "0.001"},
        {"act/family": "delu"},
    ]

    # The same command with more trials continues the study without running the points again.
    stream = io.StringIO()
    study = run_search(settings(4, *points), runner=FakeRunner(), stream=stream).study
    assert "note: enqueued 0 configuration(s) to run first (2 already in the study)" in stream.getvalue()
    assert len(study.trials) == 4 and "fixed_params" not in study.trials[3].system_attrs


def test_points_beyond_the_trial_count_wait_in_the_study_and_say_so() -> None:
    stream = io.StringIO()
    study = run_search(settings(1, "act/family=coslu", "act/family=delu"), runner=FakeRunner(), stream=stream).study
    assert "note: 1 enqueued configuration(s) do not fit in --trials 1; they wait in the study" in stream.getvalue()
    assert [t.state.name for t in study.trials] == ["COMPLETE", "WAITING"]
    # A run with more trials takes the waiting one first.
    study = run_search(settings(2), runner=FakeRunner(), stream=io.StringIO()).study
    assert study.trials[1].state.name == "COMPLETE" and study.trials[1].params["act/family"] == "delu"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--enqueue", "act/family"], "argument --enqueue: expected NAME=VALUE pairs separated by commas"),
        (["--enqueue", "act/family=gelu"], "--enqueue: parameter 'act/family' has no choice 'gelu'; its choices: relu"),
        (["--enqueue", "opt/lr=1"], "--enqueue: parameter 'opt/lr' must be a number in 0.0001..0.01, got '1'"),
        (
            ["--enqueue", "act/family=relu", "--sampler", "grid", "--space", "pretrained_swap"],
            "--enqueue does not combine with --sampler grid, which runs every path of the space itself",
        ),
    ],
)
def test_a_bad_point_is_one_line_before_anything_is_written(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--space", "trainable_zoo", "--backend", "local", "--storage", STORAGE, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not Path("runs").exists() and not Path("aaf-runs").exists()


def test_two_searches_enqueuing_the_same_point_at_once_run_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(STORAGE)
    study = optuna.create_study(storage=storage, study_name="race")
    other = optuna.load_study(study_name="race", storage=storage)
    enqueue = study.enqueue_trial

    def both_looked_before_either_enqueued(params: dict[str, object], **options: object) -> None:
        # Each search found the point absent (skip_if_exists looked); the other one enqueues it first.
        other.enqueue_trial(params)
        enqueue(params)

    monkeypatch.setattr(study, "enqueue_trial", both_looked_before_either_enqueued)

    assert enqueue_points(study, [{"act/family": "coslu"}]) == 1

    assert [(t.number, t.state.name) for t in study.trials] == [(0, "WAITING"), (1, "FAIL")]
    assert study.trials[1].user_attrs["fail_category"] == "surplus"
    assert study.trials[1].user_attrs["fail_reason"] == (
        "not run: trial 0 already runs these parameters (two searches enqueued it)"
    )
