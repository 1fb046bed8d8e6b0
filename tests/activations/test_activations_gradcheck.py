"""torch.autograd.gradcheck in float64 w.r.t. the input and every parameter of every trainable family.

Inputs are kept away from kinks (0, ReLUN's n, F-neuron's knots) where the derivative does not exist.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from activation_cases import away_from, build64
from torch.func import functional_call

from aaf_search import activations
from aaf_search.activations.fneuron import knots
from aaf_search.activations.lslu import LSLU
from aaf_search.activations.registry import Activation, InitSpec, ParamShape

# family -> (init, shape, build options, input shape, kinks to avoid)
CASES: dict[str, tuple[InitSpec, ParamShape, dict[str, Any], tuple[int, ...], list[float]]] = {
    "prelu": ({"a": 0.3}, "channel", {}, (3, 2, 4), [0.0]),
    "coslu": ({"a": 0.7, "b": 1.3}, "channel", {}, (3, 2, 4), []),
    "sinlu": ({"a": 0.7, "b": 1.3}, "channel", {}, (3, 2, 4), []),
    "delu": ({"n": 0.4}, "channel", {}, (3, 2, 4), [0.0]),
    "lincomb": ({"w": [0.3, -0.2, 0.5, 0.1]}, "channel", {}, (3, 2, 4), [0.0]),
    "normlincomb": ({"w": [0.5, 0.2, 0.9, 0.4]}, "channel", {}, (3, 2, 4), [0.0]),
    "relun": ({"n": 1.3}, "channel", {}, (3, 2, 4), [0.0, 1.3]),
    "scaledsoftsign": ({"alpha": 1.2, "beta": 0.8}, "channel", {}, (3, 2, 4), []),
    "shilu": ({"alpha": 1.2, "beta": 0.3}, "channel", {}, (3, 2, 4), [0.0]),
    "ahaf": ({"beta": 1.1, "gamma": 1.7}, "neuron", {"input_shape": (2, 4)}, (3, 2, 4), []),
    "leaf": ({"p1": 0.8, "p2": 0.3, "p3": 1.4, "p4": -0.2}, "neuron", {"input_shape": (2, 4)}, (3, 2, 4), []),
    "fneuron": ("random", "neuron", {"input_shape": (2, 4), "count": 6, "interval": (-2.0, 2.0)}, (3, 2, 4), []),
    "apa": ({"lambda": 0.6, "kappa": 0.8}, "channel", {}, (3, 2, 4), []),
    "aglu": ({"lambda": 0.6, "kappa": 1.2}, "channel", {}, (3, 2, 4), []),
    "lslu": ({"theta": [0.7, 1.3], "omega": [0.2, -0.1]}, "layer", {"n": 2}, (2, 2, 4, 4), [0.0]),
}


def test_every_trainable_family_has_a_case() -> None:
    assert set(CASES) == set(activations.names(trainable=True))


def _input(name: str, shape: tuple[int, ...], kinks: list[float]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if name == "fneuron":
        # Inside each segment between knots (fraction 0.2..0.8), plus points outside the interval.
        k = knots(6, (-2.0, 2.0))
        segment = torch.randint(0, len(k) - 1, shape, generator=generator)
        fraction = 0.2 + 0.6 * torch.rand(shape, generator=generator, dtype=torch.float64)
        x = k[segment] + fraction * (k[1] - k[0])
        x.view(-1)[:2] = torch.tensor([-2.7, 3.1])
        return x
    x = 2.5 * torch.randn(shape, generator=generator, dtype=torch.float64)
    return away_from(x, kinks, 0.05)


def _gradcheck(module: Activation, x: torch.Tensor) -> bool:
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]

    def fn(inp: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return functional_call(module, dict(zip(names, values, strict=True)), (inp,))

    return torch.autograd.gradcheck(fn, (x.requires_grad_(True), *params), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_input_and_parameters(name: str) -> None:
    init, shape, options, input_shape, kinks = CASES[name]
    module = build64(name, init, shape=shape, channels=input_shape[1], **options)
    if isinstance(module, LSLU):
        with torch.no_grad():
            module.bn.weight.uniform_(0.5, 1.5)
            module.bn.bias.uniform_(-0.5, 0.5)
    assert _gradcheck(module, _input(name, input_shape, kinks))


def test_gradcheck_lslu_in_eval_mode() -> None:
    module = build64("lslu", {"theta": [1.2], "omega": [0.3]}, n=1, channels=2)
    module(torch.randn(4, 2, 3, 3, dtype=torch.float64))
    module.eval()
    x = away_from(torch.randn(2, 2, 3, 3, dtype=torch.float64), [0.0], 0.05)
    assert _gradcheck(module, x)
