"""The local backend: Optuna's own ``study.optimize`` loop in this process, with Optuna's pruners.

For a laptop or a debugger; the study it leaves reads the same as the Ray backend's.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
import torch

from aaf_search.errors import UserError
from aaf_search.search.session import SearchSession
from aaf_search.search.settings import SearchSettings
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
        if resources.cpus_per_trial is not None and resources.cpus_per_trial < 1:
            raise UserError(f"--cpus-per-trial must be >= 1 with the local backend, got {resources.cpus_per_trial}")

    def run(self, session: SearchSession) -> None:
        if session.resources.cpus_per_trial is not None:
            torch.set_num_threads(int(session.resources.cpus_per_trial))
        objective = make_objective(session)
        while (missing := session.remaining()) > 0:
            session.study.optimize(objective, n_trials=missing, catch=(TrialDiverged,), callbacks=[session.progress])
            if session.remaining() >= missing:
                # Every trial of the round failed (diverged): another round would most likely too.
                session.progress.note(f"stopping: the last {missing} trials all failed")
                return


def make_objective(session: SearchSession) -> Callable[[optuna.Trial], float | list[float]]:
    """Optuna's objective: sample a config, train it, report every epoch, record the outcome."""
    recorder = session.recorder

    def objective(trial: optuna.Trial) -> float | list[float]:
        config = recorder.start(trial)
        history: list[EpochReport] = []

        def on_epoch(report: EpochReport) -> None:
            history.append(report)
            if recorder.epoch(trial, report):
                raise optuna.TrialPruned(f"pruned after epoch {report.epoch}")

        try:
            result = session.runner(config, on_epoch=on_epoch, out_dir=session.trial_dir(trial.number))
        except optuna.TrialPruned:
            recorder.pruned(trial, history)
            raise
        except TrialDiverged as exc:
            recorder.failed(trial, str(exc), history)
            session.progress.note(f"trial {trial.number} failed: {exc}")
            raise
        values = recorder.complete(trial, result)
        return values[0] if len(values) == 1 else values

    return objective
