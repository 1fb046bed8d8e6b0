"""Shared helpers of the activation tests: float64 builders and the input shapes each family accepts."""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import Tensor

from aaf_search import activations
from aaf_search.activations.registry import Activation, InitSpec, ParamShape, apply_init

X_REF = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]
"""The inputs of every reference row in SPEC-activations.md."""

A = TypeVar("A", bound=Activation)

INPUT_SHAPES: dict[str, tuple[int, ...]] = {"NC": (4, 3), "NCHW": (2, 3, 4, 5), "NTC": (2, 5, 3)}


def build64(name: str, init: InitSpec = None, *, shape: ParamShape = "layer", **kwargs: Any) -> Activation:
    """``create`` then cast to float64 and write ``init`` again, so that values like 0.1 are exact."""
    if activations.get(name).needs_channels:
        kwargs.setdefault("channels", 3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = activations.create(name, init=init, shape=shape, **kwargs).double()
        apply_init(module, init)
    return module


def build64_as(cls: type[A], init: InitSpec = None, **kwargs: Any) -> A:
    """:func:`build64` for the family ``cls``, typed as that class (for its family-specific attributes)."""
    module = build64(cls.family, init, **kwargs)
    assert isinstance(module, cls)
    return module


def supported_inputs(name: str) -> list[str]:
    """LSLU contains a 2-D depthwise conv and takes only (N, C, H, W); the rest take any rank."""
    return ["NCHW"] if name == "lslu" else list(INPUT_SHAPES)


def build_for(name: str, mode: ParamShape, input_shape: tuple[int, ...], **kwargs: Any) -> Activation:
    """The activation ``name`` for inputs of shape ``(N, *input_shape)`` with parameter sharing ``mode``."""
    return activations.create(name, shape=mode, channels=input_shape[0], input_shape=input_shape, **kwargs)


def away_from(values: Tensor, points: list[float], margin: float) -> Tensor:
    """Move entries of ``values`` that lie within ``margin`` of a kink by 2·margin (for gradcheck)."""
    out = values.clone()
    for p in points:
        near = (out - p).abs() < margin
        out[near] = out[near] + 2 * margin
    return out
