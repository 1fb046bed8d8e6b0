"""The fused-activation test cases: one module per family, its inputs, and the eager/fused comparison.

Shared by the CPU tests (test_fused.py) and the CUDA tests (test_fused_cuda.py).
"""

from __future__ import annotations

from typing import Any

import torch
from activation_cases import away_from
from torch import Tensor

from aaf_search import activations
from aaf_search.activations import fused
from aaf_search.activations.fneuron import knots
from aaf_search.activations.lslu import LSLU
from aaf_search.activations.registry import Activation, InitSpec, ParamShape, apply_init

# family -> (init away from any reduction, build options, kinks of the input to avoid)
CASES: dict[str, tuple[InitSpec, dict[str, Any], list[float]]] = {
    "coslu": ({"a": 0.7, "b": 1.3}, {}, []),
    "sinlu": ({"a": 0.7, "b": 1.3}, {}, []),
    "delu": ({"n": 0.4}, {}, [0.0]),
    "lincomb": ({"w": [0.3, -0.2, 0.5, 0.1]}, {}, [0.0]),
    "normlincomb": ({"w": [0.5, 0.2, 0.9, 0.4]}, {}, [0.0]),
    "relun": ({"n": 1.3}, {}, [0.0, 1.3]),
    "scaledsoftsign": ({"alpha": 1.2, "beta": 0.8}, {}, []),
    "shilu": ({"alpha": 1.2, "beta": 0.3}, {}, [0.0]),
    "ahaf": ({"beta": 1.1, "gamma": 1.7}, {}, []),
    "leaf": ({"p1": 0.8, "p2": 0.3, "p3": 1.4, "p4": -0.2}, {}, []),
    "fneuron": ("random", {"count": 6, "interval": (-2.0, 2.0)}, []),
    "apa": ({"lambda": 0.6, "kappa": 0.8}, {}, []),
    "aglu": ({"lambda": 0.6, "kappa": 1.2}, {}, []),
    "lslu": ({"theta": [0.7, 1.3], "omega": [0.2, -0.1]}, {"n": 2}, [0.0]),
}

# Relative tolerances (of each tensor's scale) for each low precision, vs the eager module in that dtype.
DTYPE_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


def input_shape_of(name: str) -> tuple[int, ...]:
    return (2, 2, 4, 4) if name == "lslu" else (3, 2, 4)


def build_case(name: str, mode: ParamShape, dtype: torch.dtype = torch.float64) -> Activation:
    """The CASES module for inputs of ``input_shape_of(name)``; parameters moved off their init per element."""
    init, options, _ = CASES[name]
    input_shape = input_shape_of(name)[1:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = activations.create(name, shape=mode, channels=input_shape[0], input_shape=input_shape, **options)
        module = module.to(dtype)
        apply_init(module, init)
        with torch.no_grad():
            for pname in module.param_names:
                param = getattr(module, pname)
                # Distinct values per channel/neuron, so a wrong reduction axis cannot go unnoticed.
                param.mul_(1 + 0.2 * torch.rand(param.shape, dtype=dtype))
            if isinstance(module, LSLU):
                module.bn.weight.uniform_(0.5, 1.5)
                module.bn.bias.uniform_(-0.5, 0.5)
    return module


def case_input(name: str, dtype: torch.dtype = torch.float64, seed: int = 0) -> Tensor:
    shape = input_shape_of(name)
    generator = torch.Generator().manual_seed(seed)
    if name == "fneuron":
        # Inside the segments between knots (fraction 0.2..0.8), plus points outside the interval.
        k = knots(6, (-2.0, 2.0))
        segment = torch.randint(0, len(k) - 1, shape, generator=generator)
        x = k[segment] + (0.2 + 0.6 * torch.rand(shape, generator=generator, dtype=torch.float64)) * (k[1] - k[0])
        x.view(-1)[:2] = torch.tensor([-2.7, 3.1])
        return x.to(dtype)
    x = 2.5 * torch.randn(shape, generator=generator, dtype=torch.float64)
    return away_from(x, CASES[name][2], 0.05).to(dtype)


def value_and_grads(module: Activation, x: Tensor, impl: str, *, compile: bool = False) -> tuple[Tensor, list[Tensor]]:
    """``module(x)`` and the gradients w.r.t. ``x`` and every parameter, under implementation ``impl``."""
    fused.set_implementation(impl, compile=compile)
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    # A non-uniform upstream gradient, so each element's weight in the parameter sums matters.
    weight = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device).view(out.shape)
    grads = torch.autograd.grad((out * weight).sum(), [x, *module.parameters()])
    return out.detach(), [g.detach() for g in grads]


def assert_close_scaled(actual: Tensor, expected: Tensor, rel: float, what: str) -> None:
    """|actual - expected| <= rel · max(1, max|expected|): a tolerance relative to the tensor's scale."""
    scale = max(1.0, expected.abs().max().item())
    error = (actual.double() - expected.double()).abs().max().item()
    assert error <= rel * scale, f"{what}: max error {error:.3g} > {rel * scale:.3g}"
