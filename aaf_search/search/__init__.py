"""Search: sampler, pruner and backend tables, storage, the shared trial recorder, and export.

``run_search(SearchSettings(space="lslu_depth"))`` is ``aaf-search --space lslu_depth``. A new sampler,
pruner or backend is one entry in ``SAMPLERS``, ``PRUNERS`` or ``BACKENDS``. Only a Ray backend would
import Ray, and only when chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aaf_search.search.backends import BACKENDS, Backend, default_backend, make_backend
from aaf_search.search.export import load_study, pick, write_export
from aaf_search.search.objectives import OBJECTIVES, Objective
from aaf_search.search.pruners import PRUNERS, make_pruner
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.samplers import SAMPLERS, SamplerContext, make_sampler
from aaf_search.search.seeds import trial_seed
from aaf_search.search.session import SearchSession, TrialRunner
from aaf_search.search.settings import Resources, SearchSettings
from aaf_search.search.storage import DEFAULT_STORAGE, open_storage

if TYPE_CHECKING:
    from aaf_search.search.driver import SearchOutcome, run_search


def __getattr__(name: str) -> Any:
    # The driver imports the models (torch: seconds), which a command building its
    # argument parser from the tables above does not need: a mistyped option is refused at once.
    if name in ("SearchOutcome", "run_search"):
        from aaf_search.search import driver

        return getattr(driver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "DEFAULT_STORAGE",
    "OBJECTIVES",
    "PRUNERS",
    "SAMPLERS",
    "Backend",
    "Objective",
    "Resources",
    "SamplerContext",
    "SearchOutcome",
    "SearchSession",
    "SearchSettings",
    "TrialRecorder",
    "TrialRunner",
    "default_backend",
    "load_study",
    "make_backend",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "pick",
    "run_search",
    "trial_seed",
    "write_export",
]
