"""The local backend: Optuna's own ``study.optimize`` loop in this process, with Optuna's pruners.

For a laptop or a debugger; the study it leaves reads the same as the Ray backend's.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import optuna
import torch
from optuna.trial import TrialState

from aaf_search.errors import UserError
from aaf_search.search.recording import ERROR, INTERRUPTED, OOM, SURPLUS, NotFinite, exception_category
from aaf_search.search.session import FailureStreak, SearchSession
from aaf_search.search.settings import SearchSettings
from aaf_search.search.storage import first_line
from aaf_search.trials.report import EpochReport, TrialDiverged


class LocalBackend:
    """One trial at a time: trials seed torch's global generators, so threads would share them."""

    def check(self, settings: SearchSettings) -> None:
        resources = settings.resources
        ray_only = {
            "--address": resources.address is not None,
            "--gpus-per-trial": resources.gpus_per_trial is not None,
            "--max-concurrent": resources.max_concurrent not in (None, 1),
        }
        for flag, given in ray_only.items():
            if given:
                raise UserError(f"{flag} is a Ray option; the local backend runs one trial at a time in this process")
        cpus = resources.cpus_per_trial
        if cpus is not None:
            # The local backend runs its trial with this many torch threads: a whole number, at most the cores.
            if cpus < 1 or not float(cpus).is_integer():
                raise UserError(f"--cpus-per-trial must be a whole number >= 1 with the local backend, got {cpus:g}")
            cores = os.cpu_count() or 1
            if cpus > cores:
                raise UserError(f"--cpus-per-trial {cpus:g} but this machine has {cores} CPU cores")

    def run(self, session: SearchSession) -> None:
        if session.resources.cpus_per_trial is not None:
            torch.set_num_threads(int(session.resources.cpus_per_trial))
        # As many failures in a row as this session set out to run (the Ray backend's rule too): a whole
        # round failed, and more trials would most likely fail as well.
        streak = FailureStreak(give_up_after=max(session.remaining(), 1))
        objective = make_objective(session, streak)

        while (claim := session.claim()).missing > 0:
            if claim.open <= 0:
                session.note_others_run_the_rest(claim)
                return
            if session.out_of_time():
                return
            # Alone on the study, every open slot is this process's; shared, each trial first claims one,
            # and under a timeout each trial first checks the clock.
            batch = 1 if session.shared or session.timeout is not None else claim.open
            try:
                # No Optuna callbacks: given any, Optuna reads every finished trial back with all its
                # attributes (milliseconds per trial on SQLite); the objective counts its own outcome.
                session.study.optimize(objective, n_trials=batch, catch=(TrialFailed,))
            except KeyboardInterrupt:
                session.progress.note(f"interrupted: the running trial was marked FAIL ({INTERRUPTED})")
                raise
            if streak.gave_up:
                session.give_up(streak)
                return


class TrialFailed(Exception):
    """Raised by the objective after it recorded why a trial failed; Optuna marks the trial FAIL and goes on."""

    def __init__(self, reason: str, category: str) -> None:
        super().__init__(reason)
        self.category = category  # as recorded, for the failure streak


def make_objective(session: SearchSession, streak: FailureStreak) -> Callable[[optuna.Trial], float | list[float]]:
    """Optuna's objective: run the trial (:func:`trial_values`), then count its outcome into the session's
    progress line and ``streak``, and stop the study when the streak gives up."""

    def finished(
        trial: optuna.Trial, state: TrialState, value: float | None = None, category: str | None = None
    ) -> None:
        session.progress.tally(trial.number, state, value)
        streak.add(state, category)
        if streak.gave_up:
            session.study.stop()  # Optuna lets the objective stop the loop; it ends after this trial

    def objective(trial: optuna.Trial) -> float | list[float]:
        try:
            values = trial_values(session, trial)
        except optuna.TrialPruned:
            finished(trial, TrialState.PRUNED)
            raise
        except TrialFailed as exc:
            finished(trial, TrialState.FAIL, category=exc.category)
            raise
        finished(trial, TrialState.COMPLETE, values[0])
        return values[0] if len(values) == 1 else values

    return objective


def trial_values(session: SearchSession, trial: optuna.Trial) -> list[float]:
    """Claim the trial's slot, sample a config, train it, record the outcome; the objective values, in order.

    Raises ``TrialPruned`` or :class:`TrialFailed` (with the reason it recorded) for a trial that did not
    complete; anything else it raises stops the search.
    """
    recorder = session.recorder
    if session.shared and session.surplus(trial.number):
        # Another process claimed the last slot between this one's check and its ask: fail before
        # sampling, so the study holds no more finished trials than asked for.
        reason = session.surplus_reason()
        recorder.failed(trial, reason, [], category=SURPLUS)
        raise TrialFailed(reason, SURPLUS)
    try:
        config = recorder.start(trial)
    except UserError as exc:  # the space failed to sample (a user's space): the search stops, as below
        recorder.failed(trial, str(exc), [], category=ERROR)
        raise
    session.progress.started(running=1)
    history: list[EpochReport] = []

    def on_epoch(report: EpochReport) -> None:
        history.append(report)
        if recorder.epoch(trial, report):
            raise optuna.TrialPruned(f"pruned after epoch {report.epoch}")

    try:
        result = session.runner(config, on_epoch=on_epoch, out_dir=session.out_dir(trial, config))
    except optuna.TrialPruned:
        recorder.pruned(trial, history)
        raise
    except UserError as exc:
        # The user's input (a data file, a plan that fits no slot): every trial would fail the same
        # way, so the search stops with the one-line message, and the trial says why it failed.
        recorder.failed(trial, str(exc), history, category=ERROR)
        raise
    except KeyboardInterrupt:
        recorder.failed(trial, INTERRUPTED, history, category=INTERRUPTED)
        raise
    except optuna.exceptions.StorageInternalError:
        raise  # the storage failed, not the trial: recording a reason would fail the same way
    except Exception as exc:  # anything the model or the training raised: this trial fails, the search goes on
        reason = str(exc) if isinstance(exc, TrialDiverged) else first_line(exc)
        category = exception_category(exc)
        recorder.failed(trial, reason, history, category=category)
        session.progress.note(f"trial {trial.number} failed: {reason}")
        if category == OOM:
            release_memory()
        raise TrialFailed(reason, category) from exc
    try:
        return recorder.complete(trial, result)
    except NotFinite as exc:  # Optuna would fail the trial without a word; this says why, and counts it as failed
        recorder.failed(trial, str(exc), result.history, category=ERROR)
        session.progress.note(f"trial {trial.number} failed: {exc}")
        raise TrialFailed(str(exc), ERROR) from None


def release_memory() -> None:
    """Give back what a trial that ran out of memory held, so that the next trial starts with it free."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
