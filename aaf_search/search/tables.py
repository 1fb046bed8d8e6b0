"""Lookup in a table of factories with the error every table gives: the unknown name and the valid ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from aaf_search.errors import UserError

V = TypeVar("V")


def lookup(table: Mapping[str, V], name: str, kind: str) -> V:
    """``table[name]``, or a :class:`UserError` naming the ``kind`` and listing the valid names."""
    if name not in table:
        raise UserError(f"unknown {kind} '{name}'; choose one of: {', '.join(table)}")
    return table[name]
