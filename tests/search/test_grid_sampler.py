"""``--sampler grid``: every path of the space once, told inside ``optimize`` or not, failed points retried."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from conftest import FakeRunner
from optuna.trial import TrialState

from aaf_search.config import OptimConfig, TrialConfig
from aaf_search.search import SearchSettings, run_search
from aaf_search.search.samplers import PathGridSampler, SamplerContext, make_sampler
from aaf_search.spaces import SearchSpace, SpaceDefaults

FAMILIES = ("relu", "coslu")
LRS = (0.001, 0.002, 0.003)
EVERY_POINT = sorted((family, lr) for family in FAMILIES for lr in LRS)
# The same six points as a space file, for the end-to-end runs.
GRID_SPACE = (
    "model: dnn2\n"
    "base: {plan: [{select: all, activation: {family: relu}}]}\n"
    "params:\n"
    "  - {name: act/family, target: plan.0.activation.family, type: categorical, choices: [relu, coslu]}\n"
    "  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.003, step: 0.001}\n"
)


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    family = trial.suggest_categorical("act/family", FAMILIES)
    lr = trial.suggest_float("opt/lr", LRS[0], LRS[-1], step=0.001)
    return defaults.trial(base_activation=family, optim=OptimConfig(lr=lr))


SPACE = SearchSpace(name="six", summary="two families x three learning rates", suggest=suggest)


def grid_study(seed: int = 0, **kwargs: object) -> optuna.Study:
    sampling = make_sampler("grid", seed, SamplerContext(SPACE, SPACE.defaults))
    assert isinstance(sampling.sampler, PathGridSampler) and sampling.capacity == 6
    return optuna.create_study(sampler=sampling.sampler, **kwargs)  # type: ignore[arg-type]


def point(trial: optuna.trial.FrozenTrial) -> tuple[str, float]:
    return trial.params["act/family"], trial.params["opt/lr"]


def complete_outside_optimize(study: optuna.Study, trials: int) -> None:
    """Ask, sample and tell ``trials`` trials as the Ray backend's driver does: outside study.optimize."""
    for _ in range(trials):
        trial = study.ask()
        SPACE.sample(trial)
        study.tell(trial, 1.0)


def test_trials_told_outside_optimize_walk_the_whole_grid() -> None:
    # The Ray backend asks and tells on the driver, outside study.optimize; Optuna's BruteForceSampler
    # called study.stop() when the last point was told, which Optuna refuses there (a RuntimeError).
    study = grid_study()
    complete_outside_optimize(study, 6)
    assert sorted(point(t) for t in study.trials) == EVERY_POINT


def test_the_last_point_failed_outside_optimize() -> None:
    # A resumed search fails what a killed run left RUNNING (study.fail_interrupted), outside optimize
    # too: with the other five points done, BruteForceSampler took the grid for exhausted and raised.
    study = grid_study()
    complete_outside_optimize(study, 5)
    left_running = study.ask()
    SPACE.sample(left_running)
    study.tell(left_running, state=TrialState.FAIL)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5 + [TrialState.FAIL]


def test_a_trial_failed_before_sampling_is_ignored() -> None:
    # A trial that finds every slot taken fails before it samples: a FAIL trial with no parameters.
    # BruteForceSampler then raised "param_name mismatch: a != None" on every later trial.
    def not_run(trial: optuna.Trial) -> float:
        raise RuntimeError("not run: the study already holds or runs its trials")  # local.trial_values' words

    study = grid_study()
    study.optimize(not_run, n_trials=1, catch=(RuntimeError,))
    study.optimize(lambda trial: float(SPACE.sample(trial).optim.lr), n_trials=6)
    assert sorted(point(t) for t in study.trials if t.state == TrialState.COMPLETE) == EVERY_POINT


def test_a_failed_point_runs_again_after_every_other_point() -> None:
    # BruteForceSampler counted a FAIL as explored: the point never ran again and the study stopped
    # one short of the grid.
    failed_once: list[tuple[str, float]] = []

    def objective(trial: optuna.Trial) -> float:
        config = SPACE.sample(trial)
        if not failed_once:
            failed_once.append(point(trial))  # type: ignore[arg-type]
            raise RuntimeError("diverged")
        return config.optim.lr

    study = grid_study()
    study.optimize(objective, n_trials=7, catch=(RuntimeError,))
    assert [t.state for t in study.trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 6
    assert sorted(point(t) for t in study.trials[1:]) == EVERY_POINT
    assert point(study.trials[-1]) == failed_once[0]  # retried last, once every untried point ran


def test_every_path_taken_repeats_the_least_taken_instead_of_failing() -> None:
    # Only a race between processes asks for a seventh trial; it gets a point rather than an error.
    study = grid_study()
    study.optimize(lambda trial: float(SPACE.sample(trial).optim.lr), n_trials=8)
    counts = sorted(sum(point(t) == p for t in study.trials) for p in EVERY_POINT)
    assert counts == [1, 1, 1, 1, 2, 2]


def test_a_seed_orders_the_grid_and_hyperband_brackets_see_every_trial() -> None:
    orders = []
    for seed in (0, 0, 1):
        # Hyperband hands a sampler only the trial's bracket: the sampler reads every trial anyway.
        study = grid_study(seed, pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=4))
        study.optimize(lambda trial: float(SPACE.sample(trial).optim.lr), n_trials=6)
        assert sorted(point(t) for t in study.trials) == EVERY_POINT
        orders.append([point(t) for t in study.trials])
    assert orders[0] == orders[1] and orders[0] != orders[2]


def test_enqueued_values_are_kept_and_the_rest_of_the_grid_follows() -> None:
    study = grid_study()
    study.enqueue_trial({"act/family": "coslu"})
    study.optimize(lambda trial: float(SPACE.sample(trial).optim.lr), n_trials=6)
    assert study.trials[0].params["act/family"] == "coslu"
    assert sorted(point(t) for t in study.trials) == EVERY_POINT


@pytest.fixture
def grid_file() -> str:
    Path("grid.yaml").write_text(GRID_SPACE)
    return "grid.yaml"


def grid_settings(**changes: object) -> SearchSettings:
    base = {"space": "grid.yaml", "sampler": "grid", "trials": 50, "pruner": "none", "epochs": 1}
    return SearchSettings(**{"storage": "journal:runs/grid.log", "backend": "local", **base, **changes})  # type: ignore[arg-type]


def load_grid_study() -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("runs/grid.log"))
    return optuna.load_study(study_name="grid", storage=storage)


def test_local_search_reaches_every_point_despite_a_failure(grid_file: str) -> None:
    run_search(grid_settings(), runner=FakeRunner(diverge_calls={1}), stream=io.StringIO())
    study = load_grid_study()
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted((t.params["act/family"], t.params["opt/lr"]) for t in complete) == EVERY_POINT
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 1


def test_a_finished_grid_runs_nothing_more(grid_file: str) -> None:
    run_search(grid_settings(), runner=FakeRunner(), stream=io.StringIO())
    again, stream = FakeRunner(), io.StringIO()
    run_search(grid_settings(), runner=again, stream=stream)
    assert again.configs == [] and len(load_grid_study().trials) == 6
    assert "note: the grid has 6 paths; the search stops at 6 finished trials" in stream.getvalue()  # not 50
