"""The Ray worker side: a function trainable around ``run_trial``, and the plain-data messages it sends.

Names cross process boundaries, objects do not: the driver sends a trial config as a plain dict and the
worker answers with plain metrics. Ray flattens nested dicts in a result into ``a/b/c`` keys, so the
structured parts (learned activation parameters, the whole result) travel as JSON strings and are
decoded on the driver by :func:`decode_epoch` and :func:`decode_result`.

Every result is one of three kinds, told apart by its keys: an epoch report (``epoch``), the final
result (``final``), or a failure the trial caught itself (``failed``; with ``user_error`` when the
cause is the user's input, which stops the search as it would with the local backend).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aaf_search.config import TrialConfig
from aaf_search.errors import UserError
from aaf_search.search.session import TrialRunner
from aaf_search.trials.report import EpochReport, TrialDiverged, TrialResult

# Keys of the config the driver sends (see StudySearcher.suggest).
CONFIG_KEY = "trial_config"
NUMBER_KEY = "number"
OUT_DIR_KEY = "out_dir"
THREADS_KEY = "threads"
WORKDIR_KEY = "workdir"

# Keys of the results the worker sends.
EPOCH = "epoch"
FINAL = "final"
FAILED = "failed"
USER_ERROR = "user_error"
RESULT_JSON = "result_json"
ACTIVATION_PARAMS = "activation_params"


def train_trial(config: dict[str, Any], runner: TrialRunner | None = None) -> None:
    """Ray Tune function trainable: train one trial config and report every epoch, then the result.

    ``runner`` defaults to :func:`~aaf_search.trials.runner.run_trial`. A diverged trial or a user error
    is reported as a ``failed`` result instead of raised, so that it reaches the study as a one-line
    reason rather than a Ray traceback.
    """
    import torch
    from ray import tune

    if runner is None:  # imported only when used: it brings the models, the data sets and the activations
        from aaf_search.trials.runner import run_trial

        runner = run_trial

    # Ray starts each trial in its own directory; relative paths in a trial config (the data root,
    # the pre-training cache) mean the driver's directory, as with the local backend.
    if Path(config[WORKDIR_KEY]).is_dir():
        os.chdir(config[WORKDIR_KEY])
    torch.set_num_threads(int(config[THREADS_KEY]))
    trial_config = TrialConfig.from_dict(config[CONFIG_KEY])

    def on_epoch(report: EpochReport) -> None:
        tune.report(epoch_metrics(report))

    try:
        result = runner(trial_config, on_epoch=on_epoch, out_dir=Path(config[OUT_DIR_KEY]))
    except TrialDiverged as exc:
        tune.report({FAILED: str(exc)})
        return
    except UserError as exc:
        tune.report({FAILED: str(exc), USER_ERROR: True})
        return
    tune.report(final_metrics(result))


def worker_trainable() -> Callable[..., None]:
    """:func:`train_trial`, set to travel to the workers by value rather than as an import of this module.

    A function is pickled by reference unless its module is registered otherwise, so each worker actor
    would import this module before Tune counts it as started, and with it its package,
    ``aaf_search.search``: the driver's side (Optuna, the samplers, preflight with the model and
    activation registries, torch), 4-10 s of a busy core. Actors that slow to start change
    how Tune spreads short trials: trials that end before the second actor has started all run on the
    first one, Tune requests an actor for each new trial and drops the request when the first one is free
    again, and at the end ``TuneController._cleanup_trials`` waits up to 5 s for the actor still starting.
    By value, this module's functions take along only the names their code uses (``TrialConfig``, the
    trial reports, the result keys): an actor starts as fast as Ray's own, and the first trial imports
    what its runner needs (torch and the rest for ``run_trial``), and no Optuna. The registration is for
    this module only and lasts for the process; pickling by value changes nothing else.
    """
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return train_trial


def epoch_metrics(report: EpochReport) -> dict[str, Any]:
    """One epoch as a Ray result: flat numbers for Ray's own logs, activation parameters as JSON."""
    plain = dataclasses.asdict(report)
    plain[ACTIVATION_PARAMS] = json.dumps(report.activation_params)
    return plain


def decode_epoch(result: Mapping[str, Any]) -> EpochReport:
    plain = {f.name: result[f.name] for f in dataclasses.fields(EpochReport)}
    plain[ACTIVATION_PARAMS] = json.loads(plain[ACTIVATION_PARAMS])
    return EpochReport(**plain)


def final_metrics(result: TrialResult) -> dict[str, Any]:
    """The final result: the headline numbers flat (Ray's logs), the whole ``TrialResult`` as JSON."""
    return {
        FINAL: True,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "epochs_run": result.epochs_run,
        RESULT_JSON: json.dumps(dataclasses.asdict(result)),
    }


def decode_result(result: Mapping[str, Any]) -> TrialResult:
    plain = json.loads(result[RESULT_JSON])
    history = tuple(EpochReport(**report) for report in plain.pop("history"))
    return TrialResult(**plain, history=history)
