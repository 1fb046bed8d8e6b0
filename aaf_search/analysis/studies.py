"""Open the robustness companion of a search's study for analysis, with one-line errors.

Analysis only reads: a storage file that does not exist is a typo to report, not a database to create.
"""

from __future__ import annotations

import optuna

from aaf_search.search.storage import open_existing_storage
from aaf_search.search.study import robust_name, study_names


def load_companion(study: optuna.Study, storage_url: str) -> optuna.Study | None:
    """The ``<study>:robust`` companion of ``study`` in the same storage, or ``None`` before any robust run."""
    name = robust_name(study.study_name)
    storage = open_existing_storage(storage_url)
    if name not in study_names(storage):
        return None
    return optuna.load_study(study_name=name, storage=storage)
