"""Turn a ``--space`` argument into a :class:`SearchSpace` (a catalog name, a space file or a Python path),
and sample a space so that a user's failing space is a one-line error."""

from __future__ import annotations

from pathlib import Path

import optuna

from aaf_search.config import TrialConfig
from aaf_search.errors import UserError
from aaf_search.spaces.catalog import CATALOG
from aaf_search.spaces.space import SearchSpace, SpaceDefaults, SpaceError
from aaf_search.spaces.user import describe_failure, load_space_file, load_space_function

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


def sample_once(space: SearchSpace, trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """``space.sample``; a user's space that raises is one line naming the space, the error and where.

    A built-in space that raises is a defect of this package: its traceback is kept.
    """
    try:
        return space.sample(trial, defaults)
    except UserError:
        raise
    except Exception as exc:
        if CATALOG.get(space.name) is space:
            raise
        raise SpaceError(
            f"space '{space.source or space.name}' failed on a sample trial: {describe_failure(exc)}"
        ) from None
