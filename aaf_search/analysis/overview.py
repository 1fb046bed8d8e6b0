"""What a storage holds, one line per search study: ``aaf-search studies``.

Counts come from the storage's per-state trial counts (one query each on an RDB storage). The best is
the first of :func:`~aaf_search.search.export.ranked`, the trial ``export`` and a search's summary call
best (of equal scores, the earlier trial; the storage's own best-trial query breaks no ties), so it
reads the complete trials, as the Pareto front of several objectives does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from aaf_search.search import study_attrs
from aaf_search.search.export import ranked
from aaf_search.search.rundir import run_dir_of
from aaf_search.search.study import ROBUST_SUFFIX, robust_name
from aaf_search.text_table import aligned

HEADER = (
    "study",
    "space",
    "complete",
    "pruned",
    "failed",
    "running",
    "best",
    "robust runs",
    "started",
    "run directory",
)


@dataclass(frozen=True)
class StudyLine:
    """One search study as ``aaf-search studies`` lists it."""

    name: str
    space: str
    complete: int
    pruned: int
    failed: int
    running: int
    best: str  # "val_accuracy 0.9931 (trial 13)", "Pareto front of 4", or "-"
    robust_runs: int  # complete runs of its robustness companion
    started: str  # when its first trial started, to the minute, or "-"
    run_dir: str  # where its trials' weights are (see run_dir_of), or "-" when that directory is not there

    def cells(self) -> tuple[str, ...]:
        counts = (self.complete, self.pruned, self.failed, self.running, self.robust_runs)
        complete, pruned, failed, running, robust = (str(count) for count in counts)
        return self.name, self.space, complete, pruned, failed, running, self.best, robust, self.started, self.run_dir


def study_lines(storage: BaseStorage) -> list[StudyLine]:
    """Every search study of ``storage`` (robustness companions count in their search's line), by name."""
    studies = {study.study_name: study for study in storage.get_all_studies()}
    lines = []
    for name, study in sorted(studies.items()):
        if name.endswith(ROBUST_SUFFIX):
            continue
        sid = storage.get_study_id_from_name(name)

        def count(state: TrialState, study_id: int = sid) -> int:
            return storage.get_n_trials(study_id, state)

        companion = robust_name(name)
        robust_runs = (
            count(TrialState.COMPLETE, storage.get_study_id_from_name(companion)) if companion in studies else 0
        )
        lines.append(
            StudyLine(
                name=name,
                space=str(study.user_attrs.get(study_attrs.SPACE, "-")),
                complete=count(TrialState.COMPLETE),
                pruned=count(TrialState.PRUNED),
                failed=count(TrialState.FAIL),
                running=count(TrialState.RUNNING),
                best=_best(storage, name, str(study.user_attrs.get(study_attrs.METRIC, "value"))),
                robust_runs=robust_runs,
                started=_started(storage, sid),
                run_dir=_run_dir(name, study.user_attrs),
            )
        )
    return lines


def _best(storage: BaseStorage, name: str, metric: str) -> str:
    study = optuna.load_study(study_name=name, storage=storage)
    if len(study.directions) > 1:
        front = study.best_trials
        return f"Pareto front of {len(front)}" if front else "-"
    best = ranked(study)
    return f"{metric} {best[0].values[0]:.4f} (trial {best[0].number})" if best else "-"


def _started(storage: BaseStorage, study_id: int) -> str:
    if storage.get_n_trials(study_id) == 0:
        return "-"
    first = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, 0))
    return first.datetime_start.strftime("%Y-%m-%d %H:%M") if first.datetime_start is not None else "-"


def _run_dir(name: str, attrs: dict[str, Any]) -> str:
    path = run_dir_of(name, attrs)
    return str(path) if path.is_dir() else "-"


def format_lines(lines: list[StudyLine]) -> str:
    return aligned(HEADER, [line.cells() for line in lines])
