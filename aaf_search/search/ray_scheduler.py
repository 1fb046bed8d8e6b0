"""The Ray Tune scheduler that lets the study's Optuna pruner decide when a trial stops.

It runs trials first in, first out and stops one when :meth:`StudySearcher.observe` says the pruner
chosen with ``--pruner`` wants it pruned: the same pruner, on the same intermediate values, as with the
local backend. It also forwards why a worker crashed, which Ray tells the scheduler but not the searcher.

It never stops a trial at the last epoch of its budget
(:meth:`~aaf_search.search.recording.TrialRecorder.epoch` ignores the pruner there): the worker still has
to send its final result (test accuracy, parameter counts, run directory), and a trial stopped before that
is told PRUNED. Ray's own ``ASHAScheduler`` with ``max_t`` = the epoch budget would do just that (``STOP``
at ``max_t``), which is one reason this backend does not use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import cloudpickle
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from aaf_search.search.ray_searcher import StudySearcher
from aaf_search.search.storage import first_line

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController


class StudyPruningScheduler(FIFOScheduler):
    """FIFO, with ``STOP`` whenever the searcher's Optuna pruner says prune."""

    def __init__(self, searcher: StudySearcher) -> None:
        super().__init__()
        self.searcher = searcher

    def on_trial_result(self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]) -> str:
        return TrialScheduler.STOP if self.searcher.observe(trial.trial_id, result) else TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        self.searcher.worker_failed(trial.trial_id, describe_error(trial))
        super().on_trial_error(tune_controller, trial)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with the tuner for Tuner.restore, which we never use; the searcher holds the session.
        return {key: value for key, value in self.__dict__.items() if key != "searcher"}


def describe_error(trial: Trial) -> str:
    """One line for a crashed worker: the original exception, and where Ray wrote its traceback."""
    try:
        error = _local_error(trial) or trial.get_pickled_error()
    except Exception:  # an unreadable error file must not hide the failure itself
        error = None
    cause = getattr(error, "cause", None) or error
    what = first_line(cause) if cause is not None else "the Ray worker failed"
    return f"{what} (traceback: {trial.error_file})" if trial.error_file else what


def _local_error(trial: Trial) -> BaseException | None:
    """The exception Ray pickled into the trial's local directory.

    ``Trial.get_pickled_error`` reads the copy in the run's storage path, which Ray syncs only after
    the scheduler has been told of the error; the local file is already written by then.
    """
    path = Path(trial.pickled_error_file) if trial.local_path else None
    if path is None or not path.is_file():
        return None
    with path.open("rb") as handle:
        error = cloudpickle.load(handle)  # written by this run's own Ray driver a moment ago
    return error if isinstance(error, BaseException) else None
