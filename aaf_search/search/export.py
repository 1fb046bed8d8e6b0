"""Export a trial of a study as a self-contained YAML that ``aaf-search train --config`` reproduces.

The file holds the resolved trial config (model, data, activation plan with inits, optimiser, epochs,
seed) under ``trial``, and beside it the score, where it came from (study, trial number, rank, space)
and what produced it (package versions, git revision).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from aaf_search import __version__
from aaf_search.config import META_CPU_THREADS, TrialConfig, save_yaml
from aaf_search.errors import UserError
from aaf_search.search import study_attrs
from aaf_search.search.recording import ATTR_CONFIG, ATTR_CPU_THREADS, ATTR_SPACE
from aaf_search.search.storage import open_existing_storage
from aaf_search.search.study import ROBUST_SUFFIX, objective_names, search_study_names, study_names

MAX_LISTED = 20  # complete trial numbers an error lists one by one


def load_study(storage_url: str, name: str | None) -> optuna.Study:
    """Study ``name`` from the storage; without a name, the storage's only search study.

    A search's robustness companion (``<study>:robust``) does not count as a second study there. A
    storage file that does not exist is refused, not created.
    """
    return search_study(open_existing_storage(storage_url), name)


def search_study(storage: BaseStorage, name: str | None) -> optuna.Study:
    """:func:`load_study` on a storage already open."""
    names = study_names(storage)
    if name is None:
        searches = search_study_names(storage)
        if len(searches) != 1:
            listed = ", ".join(searches) or "none"
            raise UserError(f"the storage holds {len(searches)} studies ({listed}); name one with --study")
        name = searches[0]
    if name not in names:
        # The search studies only: a robustness companion is refused below, so it is no choice to offer.
        offered = ", ".join(search_study_names(storage)) or "none"
        raise UserError(f"no study '{name}' in the storage; studies: {offered}")
    if name.endswith(ROBUST_SUFFIX):
        # Its trials are seed re-runs of a search's best, not proposals: their best is one lucky seed.
        search = name[: -len(ROBUST_SUFFIX)]
        raise UserError(f"study '{name}' holds the robustness runs of study '{search}'; use --study {search}")
    return optuna.load_study(study_name=name, storage=storage)


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, best first by the first objective (ties: the earlier trial first)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


def pick(study: optuna.Study, rank: int = 1) -> FrozenTrial:
    """The ``rank``-th best complete trial (1 is the best)."""
    trials = ranked(study)
    if not trials:
        raise UserError(f"study '{study.study_name}' has no complete trial to export yet")
    if not 1 <= rank <= len(trials):
        raise UserError(f"--rank must be between 1 and {len(trials)} (the complete trials of '{study.study_name}')")
    return trials[rank - 1]


def pick_number(study: optuna.Study, number: int) -> tuple[FrozenTrial, int]:
    """Complete trial ``number`` and its rank (1 is the best)."""
    trials = ranked(study)
    for rank, trial in enumerate(trials, start=1):
        if trial.number == number:
            return trial, rank
    numbers = sorted(trial.number for trial in trials)
    if len(numbers) > MAX_LISTED:
        listed = f"{len(numbers)} of them, from {numbers[0]} to {numbers[-1]}"
    else:
        listed = ", ".join(map(str, numbers)) or "none"
    name = study.study_name
    raise UserError(f"--trial {number}: study '{name}' has no complete trial {number}; complete trials: {listed}")


def trial_config(trial: FrozenTrial) -> TrialConfig:
    if ATTR_CONFIG not in trial.user_attrs:
        raise UserError(f"trial {trial.number} stores no config; it was not recorded by aaf-search")
    return TrialConfig.from_dict(trial.user_attrs[ATTR_CONFIG])


def export_metadata(study: optuna.Study, trial: FrozenTrial, rank: int) -> dict[str, Any]:
    return {
        "score": trial.values[0],
        "objectives": dict(zip(objective_names(study), trial.values, strict=True)),
        "metric": study.user_attrs.get(study_attrs.METRIC, "val_accuracy"),
        "test_accuracy": trial.user_attrs.get("test_accuracy"),
        "study": study.study_name,
        "trial_number": trial.number,  # "trial" is the config itself
        "rank": rank,
        "space": trial.user_attrs.get(ATTR_SPACE),
        "params": dict(trial.params),
        # The thread count changes a CPU run's numbers (reduction order): train --config reuses it.
        **({META_CPU_THREADS: trial.user_attrs[ATTR_CPU_THREADS]} if ATTR_CPU_THREADS in trial.user_attrs else {}),
        **provenance(),
    }


def write_export(path: Path, study: optuna.Study, trial: FrozenTrial, rank: int) -> Path:
    """Write ``trial`` of ``study``, the ``rank``-th best, to ``path`` (atomically, via ``save_yaml``)."""
    return save_yaml(path, trial_config(trial), **export_metadata(study, trial, rank))


def provenance() -> dict[str, Any]:
    """Versions of the packages that decide a trial's numbers, and the git revision of this checkout."""
    import torch

    return {
        "versions": {"aaf-search": __version__, "torch": str(torch.__version__), "optuna": optuna.__version__},
        "git_revision": git_revision(),
    }


def git_revision(where: Path | None = None) -> str | None:
    """``HEAD`` of the git checkout holding the package (``+dirty`` with local changes), else ``None``."""
    where = where or Path(__file__).resolve().parent
    try:
        head = _git(where, "rev-parse", "HEAD")
        dirty = _git(where, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or not a checkout (an installed wheel)
    return head + ("+dirty" if dirty else "")


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()
