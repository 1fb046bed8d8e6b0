"""Open a search's study and its robustness companion for analysis, with one-line errors.

Analysis only reads: a storage file that does not exist is a typo to report, not a database to create.
"""

from __future__ import annotations

import optuna

from aaf_search.search.export import search_study
from aaf_search.search.storage import open_existing_storage
from aaf_search.search.study import robust_name, study_names


def load_with_companion(storage_url: str, name: str | None) -> tuple[optuna.Study, optuna.Study | None]:
    """Study ``name`` (as :func:`~aaf_search.search.export.load_study` finds it) and its ``<study>:robust``
    companion, or ``None`` before any robust run; the storage is opened once (a journal is read once)."""
    storage = open_existing_storage(storage_url)
    study = search_study(storage, name)
    companion = robust_name(study.study_name)
    if companion not in study_names(storage):
        return study, None
    return study, optuna.load_study(study_name=companion, storage=storage)
