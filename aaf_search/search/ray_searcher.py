"""The Ray Tune searcher that keeps the Optuna study on the driver: asks it, reports to it, tells it.

Ray's own ``OptunaSearch`` records a trial that a scheduler stopped as COMPLETE with its partial score
and never consults an Optuna pruner. This searcher instead runs every trial through the session's
:class:`~aaf_search.search.recording.TrialRecorder`, exactly as the local backend does, so the study
reads the same whichever backend ran it:

- ``suggest`` asks the study for a trial and sends its config to a worker as plain data;
- every epoch report goes to the trial (an intermediate value) and the Optuna pruner's answer is kept
  for :class:`~aaf_search.search.ray_scheduler.StudyPruningScheduler`, which stops the trial;
- at the end a trial is told COMPLETE (the worker sent its final result), FAIL (it diverged, hit a user
  error, crashed or ended with a NaN or infinite objective) or PRUNED (anything else: the scheduler
  stopped it), with its intermediate values.

How many trials are still missing is the session's to say (:meth:`SearchSession.remaining`): a search
replaces a failed trial, the robustness stage counts a failed seed run as done.

Ray calls the scheduler's ``on_trial_result`` *before* the searcher's (and skips the searcher's when the
scheduler says stop), so the report happens in :meth:`StudySearcher.observe`, which whichever of them
comes first calls; the second call for the same epoch only reads the stored answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search import Searcher

from aaf_search import activations
from aaf_search.config import TrialConfig
from aaf_search.errors import UserError
from aaf_search.search import ray_trainable as wire
from aaf_search.search.recording import ERROR, INTERRUPTED, SURPLUS, WORKER, NotFinite, failure_category
from aaf_search.search.session import FailureStreak, SearchSession
from aaf_search.search.study import enqueue_retry, was_cut_off
from aaf_search.trials.data import get_dataset
from aaf_search.trials.models import model_info
from aaf_search.trials.report import EpochReport, TrialResult


@dataclass
class _Running:
    """A trial Ray runs: its Optuna trial, the epochs it reported and the pruner's last answer."""

    trial: optuna.Trial
    history: list[EpochReport] = field(default_factory=list)
    prune: bool = False


class StudySearcher(Searcher):
    """Asks ``session.study`` for trials until the session says none remain (:meth:`SearchSession.remaining`).

    ``threads`` is each worker's torch thread count and ``workdir`` the directory relative paths in
    trial configs refer to. :attr:`abort_reason` is set when a user error makes further trials
    pointless (as it ends a local search); the backend raises it once Ray has stopped.
    """

    def __init__(self, session: SearchSession, *, threads: int, workdir: Path) -> None:
        super().__init__()
        self.session = session
        self.threads = threads
        self.workdir = workdir
        self.abort_reason: str | None = None
        self._running: dict[str, _Running] = {}
        self._errors: dict[str, str] = {}  # Ray trial id -> why its worker crashed (from the scheduler)
        # Trials the study still lacks, as the session counts them, read again whenever a trial ends (a
        # few ms even on SQLite): Ray calls suggest() on every turn of its loop while a slot is free, and
        # reading the study each time would keep the driver's core busy. On a shared study other
        # processes finish trials too: there the count is re-read before each ask.
        self._missing = session.remaining()
        self._others_run_the_rest = False  # shared study: every trial left is claimed by other processes
        # As many failures in a row as this session set out to run: a whole round, as the local backend
        # counts it, failed, and more trials would most likely fail too.
        self._streak = FailureStreak(give_up_after=max(self._missing, 1))

    @property
    def running(self) -> int:
        return len(self._running)

    # -- Ray's Searcher interface -------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        return True  # the space is define-by-run in the study; there is nothing for Ray to hand over

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # Ray omits FINISHED
        """A new trial's plain-data config, ``None`` ("ask again later") or ``Searcher.FINISHED``."""
        remaining = self._missing
        if self.abort_reason is not None:
            return Searcher.FINISHED
        if self._streak.gave_up:
            self.session.give_up(self._streak)
            return Searcher.FINISHED
        if remaining - self.running <= 0 or (self.session.shared and not self._slot_open()):
            # Enough trials in flight; stay open while any runs, since a failed one must be replaced.
            return None if self.running else Searcher.FINISHED
        if self.session.out_of_time():
            return None if self.running else Searcher.FINISHED
        trial = self.session.study.ask()
        if self.session.shared and self.session.surplus(trial.number):
            # Another process claimed the last slot between the claim and the ask (the local backend's rule).
            self._tell_failed(_Running(trial), self.session.surplus_reason(), SURPLUS, note=False)
            self._others_run_the_rest = True
            return None if self.running else Searcher.FINISHED
        try:
            config = self.session.recorder.start(trial)
            preflight(config)
        except UserError as exc:
            self._tell_failed(_Running(trial), str(exc), ERROR)
            self.abort_reason = str(exc)
            return Searcher.FINISHED
        self._running[trial_id] = _Running(trial)
        self.session.progress.started(self.running)
        return {
            wire.CONFIG_KEY: config.to_dict(),
            wire.NUMBER_KEY: trial.number,
            wire.OUT_DIR_KEY: str(self.session.out_dir(trial, config).resolve()),
            wire.THREADS_KEY: self.threads,
            wire.WORKDIR_KEY: str(self.workdir),
        }

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.observe(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        running = self._running.pop(trial_id, None)
        if running is None:
            return
        result = result or {}
        error_reason = self._errors.pop(trial_id, None)
        if error:
            reason = error_reason or "the Ray worker failed (see error.txt under the run's ray/)"
            self._tell_failed(running, reason, failure_category(reason))  # only the text crossed from the worker
        elif result.get(wire.FINAL):
            self._complete(running, wire.decode_result(result))
        elif wire.FAILED in result:
            reason = str(result[wire.FAILED])
            user_error = bool(result.get(wire.USER_ERROR))
            self._tell_failed(running, reason, ERROR if user_error else failure_category(reason))
            if user_error:
                self.abort_reason = reason
        elif self.abort_reason is not None:
            self._tell_failed(running, f"stopped because another trial failed: {self.abort_reason}", ERROR)
            self.session.discard_checkpoint(running.trial.number)
        else:
            # Stopped by the scheduler: the pruner said so at the last epoch it reported. Its worker waits in
            # that report until it is stopped (Tune reports synchronously), so it saves nothing after this.
            self.session.recorder.pruned(running.trial, running.history)
            self._ended(self.session.study.tell(running.trial, state=TrialState.PRUNED))
            self.session.discard_checkpoint(running.trial.number)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study is the search's state, and resuming reads it (not Ray's state)."""

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("a search resumes from its Optuna study, not from Ray's experiment state")

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the tuner (with this searcher) into its experiment dir for Tuner.restore, which
        # we never use; the session (storage, open streams) cannot be pickled and is left out.
        return {key: value for key, value in self.__dict__.items() if key not in ("session", "_running")}

    # -- used by the scheduler and the backend ------------------------------------------------------

    def observe(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        """Report an epoch result to its trial once; ``True`` when the trial should stop now."""
        running = self._running.get(trial_id)
        if running is None or wire.EPOCH not in result or wire.FINAL in result or wire.FAILED in result:
            return self.abort_reason is not None
        report = wire.decode_epoch(result)
        if not running.history or running.history[-1].epoch < report.epoch:
            running.history.append(report)
            running.prune = self.session.recorder.epoch(running.trial, report)
        return running.prune or self.abort_reason is not None

    def worker_failed(self, trial_id: str, reason: str) -> None:
        """Remember why a worker crashed; Ray tells the searcher only that it did."""
        self._errors[trial_id] = reason

    def abandon(self, reason: str) -> list[int]:
        """Tell every trial still running FAIL as interrupted, with ``reason`` (Ray stopped them); their numbers."""
        numbers = []
        for trial_id in list(self._running):
            running = self._running.pop(trial_id)
            self._tell_failed(running, reason, INTERRUPTED, note=False)
            numbers.append(running.trial.number)
        return numbers

    def _slot_open(self) -> bool:
        """Shared study: whether a missing trial is still unclaimed by any process (one read per ask).

        Once every trial left runs elsewhere this searcher starts no more (as the local backend stops),
        and does not read the study again on Ray's further calls.
        """
        if self._others_run_the_rest:
            return False
        claim = self.session.claim()
        self._missing = claim.missing
        if claim.open > 0:
            return True
        self._others_run_the_rest = True
        self.session.note_others_run_the_rest(claim)
        return False

    # -- recording ----------------------------------------------------------------------------------

    def _complete(self, running: _Running, result: TrialResult) -> None:
        try:
            values = self.session.recorder.complete(running.trial, result)
        except NotFinite as exc:
            # Told as values, Optuna would fail the trial with only a warning; as the local backend does,
            # it fails with its reason and a new trial replaces it.
            self._tell_failed(_Running(running.trial, list(result.history)), str(exc), ERROR)
            return
        self._ended(self.session.study.tell(running.trial, values))

    def _tell_failed(self, running: _Running, reason: str, category: str, *, note: bool = True) -> None:
        self.session.recorder.failed(running.trial, reason, running.history, category=category)
        frozen = self.session.study.tell(running.trial, state=TrialState.FAIL)
        if note:
            self.session.progress.note(f"trial {running.trial.number} failed: {reason}")
        if category == WORKER and self.session.retry_failed and was_cut_off(frozen):
            # A worker that died (a lost node, say) cut the trial off: with --retry-failed its parameters run
            # again in this search, and carry on from its checkpoint, as those of a killed search do.
            enqueue_retry(self.session.study, frozen)
            self.session.progress.note(f"trial {frozen.number} runs again (--retry-failed)")
        self._ended(frozen)

    def _ended(self, frozen: FrozenTrial) -> None:
        self._missing = self.session.remaining()
        self._streak.record(frozen)
        self.session.progress.update(frozen, running=self.running)


def preflight(config: TrialConfig) -> None:
    """Check on the driver the names a worker would resolve, so that a typo is one line, not a Ray traceback.

    The config's own ranges were checked when it was built; what remains is what the registries resolve.
    A user error that only shows while training (a data file missing on the worker) comes back from the
    worker as a ``user_error`` result instead.
    """
    model_info(config.model)
    get_dataset(config.data.name)
    activations.get(config.base_activation)
    for entry in config.plan:
        activations.get(entry.activation.family)
