"""The Ray backend end to end on digits with the real runner: the study reads as the local backend's.

One search runs on a local Ray (2 CPUs, started once for the module; the backend finds it running and
leaves it running) and the same search runs with the local backend; the tests compare what the two
studies hold. Trials are DNN2 for 2 epochs on digits (a fraction of a second of training), so most of
the time is Ray's: starting the instance and the two workers' ``import torch``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from conftest import OddTrialPruner

from aaf_search.cli import main
from aaf_search.errors import UserError
from aaf_search.search import PRUNERS, SearchOutcome, SearchSettings, run_search
from aaf_search.search.ray_backend import check_reachable

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STORAGE = "sqlite:///runs/study.db"
ENV_IMPL = "AAF_ACTIVATION_IMPL"  # aaf_search.activations.fused's switch: eager, fused or auto

# CosLU everywhere (every trial has learned activation parameters) and one categorical learning rate,
# one value of which certainly diverges. With --seed 58 the random sampler draws 0.002, 0.005, 1e30,
# 0.002, 0.005 for trials 0..4; the asks are sequential on the driver, so this holds whatever order
# Ray finishes the trials in. With the odd pruner: 0 COMPLETE, 1 PRUNED, 2 FAIL, 3 PRUNED, 4 COMPLETE.
SPACE = """\
model: dnn2
epochs: 2
base: {plan: [{select: all, activation: {family: coslu}}]}
params:
  - {name: opt/lr, target: optim.lr, type: categorical, choices: [0.002, 0.005, 1.0e+30]}
"""
STATES = ["COMPLETE", "PRUNED", "FAIL", "PRUNED", "COMPLETE"]


@dataclass(frozen=True)
class Searched:
    by_ray: optuna.Study
    by_local: optuna.Study
    outcome: SearchOutcome  # of the Ray search
    own_address_refusal: str | None  # what check_reachable said of the running Ray's head node: nothing


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searched]:
    """The same 4-trial search run once with each backend, into one SQLite storage."""
    import ray

    root = tmp_path_factory.mktemp("ray_search")
    (root / "space.yaml").write_text(SPACE)
    storage = f"sqlite:///{root}/study.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setitem(PRUNERS, "odd", lambda epochs: OddTrialPruner())
        # Eager activations: each fresh worker would otherwise spend seconds compiling the fused ones,
        # which these tests do not exercise. Workers inherit the environment Ray starts with.
        patch.setenv(ENV_IMPL, "eager")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        try:
            own_address_refusal = refusal(ray.get_runtime_context().gcs_address)
            common = {"space": "space.yaml", "trials": 4, "sampler": "random", "pruner": "odd", "seed": 58}
            ray_settings = SearchSettings(**common, storage=storage, study="by_ray", backend="ray", out=root / "run")
            outcome = run_search(ray_settings)
            run_search(SearchSettings(**common, storage=storage, study="by_local", backend="local"))
        finally:
            ray.shutdown()
        yield Searched(
            by_ray=optuna.load_study(study_name="by_ray", storage=storage),
            by_local=optuna.load_study(study_name="by_local", storage=storage),
            outcome=outcome,
            own_address_refusal=own_address_refusal,
        )


def refusal(address: str) -> str | None:
    try:
        check_reachable(address)
    except UserError as exc:
        return str(exc)
    return None


def test_the_ray_study_reads_as_the_local_one(searched: Searched) -> None:
    by_ray, by_local = searched.by_ray.trials, searched.by_local.trials
    assert [t.state.name for t in by_ray] == [t.state.name for t in by_local] == STATES
    for ray_trial, local_trial in zip(by_ray, by_local, strict=True):
        assert ray_trial.params == local_trial.params  # the same seed draws the same configs
        assert ray_trial.user_attrs["config"] == local_trial.user_attrs["config"]
        assert sorted(ray_trial.intermediate_values) == sorted(local_trial.intermediate_values)
        assert set(ray_trial.user_attrs) == set(local_trial.user_attrs)


def test_complete_and_pruned_trials_hold_their_epochs_and_attrs(searched: Searched) -> None:
    complete, pruned = searched.by_ray.trials[0], searched.by_ray.trials[1]
    assert sorted(complete.intermediate_values) == [1, 2]
    assert complete.value == max(complete.intermediate_values.values())  # the best validation epoch
    assert complete.user_attrs["epochs_run"] == 2 and complete.user_attrs["device"] == "cpu"
    assert complete.user_attrs["param_count"] > complete.user_attrs["activation_param_count"] > 0
    assert 0.0 <= complete.user_attrs["test_accuracy"] <= 1.0
    assert complete.user_attrs["activation_params"]  # CosLU's learned parameters, per slot
    # Stopped by the scheduler on the pruner's word: PRUNED with its one epoch, never COMPLETE.
    assert sorted(pruned.intermediate_values) == [1]
    assert pruned.user_attrs["epochs_run"] == 1 and pruned.value == pruned.intermediate_values[1]

    outcome = searched.outcome
    assert outcome.best_path is not None and outcome.best_path.is_file()
    assert (outcome.run_dir / "trials" / "0000" / "metrics.csv").is_file()
    assert (outcome.run_dir / "ray").is_dir()  # Ray's own results stay in the run dir


def test_a_diverging_trial_fails_with_its_reason_and_the_search_completes(searched: Searched) -> None:
    failed = searched.by_ray.trials[2]
    assert failed.params == {"opt/lr": 1e30}
    assert failed.user_attrs["fail_reason"] == "trial diverged at epoch 1: training loss is nan"
    assert failed.user_attrs["epochs_run"] == 0
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in searched.by_ray.trials) == 4


def test_an_address_that_does_not_answer_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--space", "trainable_zoo", "--backend", "ray", "--address", "127.0.0.1:1", "--storage", STORAGE]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("aaf-search: error: Ray address '127.0.0.1:1' does not answer (connection refused)")
    assert not Path("runs").exists()  # refused before the storage was opened: no study created


def test_the_address_check_accepts_a_running_ray(searched: Searched) -> None:
    assert searched.own_address_refusal is None


def test_a_worker_actor_starts_without_importing_the_search_package(tmp_path: Path) -> None:
    """The trainable travels by value: unpickling it, as each new worker actor does before it counts as
    started, imports neither the driver's side (``aaf_search.search``, Optuna) nor torch, which the first
    trial imports when it runs."""
    from ray import cloudpickle

    from aaf_search.search.ray_trainable import worker_trainable

    payload = tmp_path / "trainable.pkl"
    payload.write_bytes(cloudpickle.dumps(worker_trainable()))
    load = (
        "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read()); "
        "print([name for name in ('aaf_search.search', 'optuna', 'torch') if name in sys.modules])"
    )
    loaded = subprocess.run([sys.executable, "-c", load, str(payload)], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr
