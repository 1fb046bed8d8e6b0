"""Turn a ``--space`` argument into a :class:`SearchSpace`: a catalog name, a space file or a Python path."""

from __future__ import annotations

from pathlib import Path

from aaf_search.spaces.catalog import CATALOG
from aaf_search.spaces.space import SearchSpace, SpaceError
from aaf_search.spaces.user import load_space_file, load_space_function

SPACE_FILE_SUFFIXES = (".yaml", ".yml")


def resolve_space(spec: str) -> SearchSpace:
    """``lslu_depth`` (catalog), ``my_space.yaml`` (file) or ``package.module:function`` (Python)."""
    if spec in CATALOG:
        return CATALOG[spec]
    if spec.endswith(SPACE_FILE_SUFFIXES):
        return load_space_file(Path(spec))
    if ":" in spec:
        return load_space_function(spec)
    raise SpaceError(
        f"unknown space '{spec}'; choose one of: {', '.join(CATALOG)} "
        "(or a space file NAME.yaml, or package.module:function)"
    )
