"""Trainable and fixed activation functions behind one registry.

``names()`` lists them, ``create(name, init=..., shape=...)`` builds one, ``get(name)`` returns the class
with its declared parameters, presets and reductions. Nothing here imports Optuna or Ray.

Families by source: ``baselines`` (ReLU, SiLU, ..., PReLU), ``pishchik`` (seed 000: CosLU, SinLU, DELU,
HELU, LinComb, NormLinComb, ReLUN, ScaledSoftSign, ShiLU), ``kostiuk`` (seeds 001/003: AHAF, LEAF),
``fneuron`` (F-neuron), ``lslu`` (seed 002: LSLU), ``apa`` (seed 004: APA, AGLU).

``set_implementation("eager" | "fused" | "auto")`` (or ``AAF_ACTIVATION_IMPL``) selects the reference
modules or the fused, memory-saving kernels of :mod:`aaf_search.activations.fused`; default ``auto``.
"""

from __future__ import annotations

from aaf_search.activations import (  # noqa: F401  (importing a family module registers it)
    apa,
    baselines,
    fneuron,
    kostiuk,
    lslu,
    pishchik,
)
from aaf_search.activations.fused import implementation, set_implementation
from aaf_search.activations.lslu import FusedLSLU, FusionError
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
    "FusedLSLU",
    "FusionError",
    "ParamShape",
    "Reduction",
    "create",
    "get",
    "implementation",
    "names",
    "register",
    "set_implementation",
]
