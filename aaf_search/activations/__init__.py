"""Trainable and fixed activation functions behind one registry.

``names()`` lists them, ``create(name, init=..., shape=...)`` builds one, ``get(name)`` returns the class
with its declared parameters, presets and reductions. Nothing here imports Optuna or Ray.
"""

from __future__ import annotations

from aaf_search.activations import baselines  # noqa: F401  (registers the fixed baselines)
from aaf_search.activations.registry import (
    PARAM_SHAPES,
    Activation,
    ActivationError,
    ParamShape,
    Reduction,
    create,
    get,
    names,
    register,
)

__all__ = [
    "PARAM_SHAPES",
    "Activation",
    "ActivationError",
    "ParamShape",
    "Reduction",
    "create",
    "get",
    "names",
    "register",
]
