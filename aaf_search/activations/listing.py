"""A plain-text table of the registry, for ``aaf-search activations`` and the docs."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from aaf_search.activations.registry import PARAM_SHAPES, Activation, get, names
from aaf_search.text_table import aligned

COLUMNS = ("name", "kind", "parameters", "shapes", "presets (*default)", "options", "source")


def option_defaults(cls: type[Activation]) -> dict[str, object]:
    """Each declared option with its constructor default (read from the signature, the one place it lives)."""
    signature = inspect.signature(cls.__init__)
    return {
        name: signature.parameters[name].default
        for name in cls.option_names
        if name in signature.parameters and signature.parameters[name].default is not inspect.Parameter.empty
    }


def describe(cls: type[Activation]) -> tuple[str, ...]:
    """One table row for a family."""
    params = ", ".join([*cls.param_names, *(f"({p})" for p in cls.structural_params)]) or "-"
    shapes = "all" if set(cls.shapes) == set(PARAM_SHAPES) else ", ".join(cls.shapes)
    presets = ", ".join(f"{p}*" if p == cls.default_preset else p for p in cls.presets) or "-"
    options = ", ".join(f"{k}={_short(v)}" for k, v in option_defaults(cls).items())
    if cls.needs_channels:
        options = ", ".join(filter(None, ["channels (required)", options]))
    source = cls.source.split(":")[0]
    return (cls.family, "trainable" if cls.param_names else "fixed", params, shapes, presets, options or "-", source)


def format_registry(selected: Sequence[str] | None = None) -> str:
    """Every registered activation (or ``selected``) as an aligned text table, trainable ones first.

    Parameters in parentheses are module parts (LSLU's kernel and BatchNorm) rather than shape
    parameters; ``all`` shapes means network, layer, channel and neuron.
    """
    classes = [get(n) for n in (selected if selected is not None else names())]
    classes.sort(key=lambda c: (not c.param_names, c.source.split(":")[0], c.family))
    return aligned(COLUMNS, [describe(c) for c in classes])


def _short(value: object) -> str:
    if isinstance(value, tuple | list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
