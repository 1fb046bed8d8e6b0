"""Search: sampler, pruner and backend tables, storage, the shared trial recorder, and export.

``run_search(SearchSettings(space="lslu_depth"))`` is ``aaf-search --space lslu_depth``. A new sampler,
pruner or backend is one entry in ``SAMPLERS``, ``PRUNERS`` or ``BACKENDS``. Only a Ray backend would
import Ray, and only when chosen.
"""

from __future__ import annotations

from aaf_search.search.backends import BACKENDS, Backend, default_backend, make_backend
from aaf_search.search.driver import SearchOutcome, run_search
from aaf_search.search.export import load_study, pick, write_export
from aaf_search.search.objectives import OBJECTIVES, Objective
from aaf_search.search.pruners import PRUNERS, make_pruner
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.samplers import SAMPLERS, SamplerContext, make_sampler
from aaf_search.search.seeds import trial_seed
from aaf_search.search.session import SearchSession, TrialRunner
from aaf_search.search.settings import Resources, SearchSettings
from aaf_search.search.storage import DEFAULT_STORAGE, open_storage

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
