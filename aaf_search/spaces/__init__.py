"""Search spaces: the :class:`SearchSpace` type, the catalog of named spaces and user-defined spaces.

``CATALOG`` maps each built-in name to its space; ``resolve_space`` also reads a space file
(``my_space.yaml``) or a Python path (``package.module:function``). Nothing here imports Ray.
"""

from __future__ import annotations

from aaf_search.spaces.catalog import CATALOG
from aaf_search.spaces.resolve import resolve_space
from aaf_search.spaces.space import METRICS, SearchSpace, SpaceDefaults, SpaceError, SuggestFn

__all__ = ["CATALOG", "METRICS", "SearchSpace", "SpaceDefaults", "SpaceError", "SuggestFn", "resolve_space"]
