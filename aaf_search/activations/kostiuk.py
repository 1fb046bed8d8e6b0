"""Seeds 001 and 003: AHAF and LEAF of Bodyanskiy & Kostiuk (``s-kostyuk/*``, package ``adaptive_afs``).

AHAF: "Adaptive Hybrid Activation Function" (s-kostyuk/ahaf_activation_1, af_replacement). LEAF:
Y. Bodyanskiy, S. Kostiuk, "Learnable Extended Activation Function for Deep Neural Networks", IJC 22(3),
2023 (s-kostyuk/leaf-aaf). The originals attach a hand-written ``autograd.Function``; its backward was
verified to equal autograd's, so plain autograd is used here (identical gradients, less code).

Both support every parameter shape: the originals are per-neuron (one parameter per element of the
layer's input) or, in the ``*_shared`` network types, one set per layer. The default preset is the
originals' default ``init_as='ReLU'``, with γ = p3 = 2^16 as in the newer repos (the older ones used 1e9,
which overflows in half precision; note that 2^16 itself just exceeds fp16's max of 65504, so fp16 models
should keep these parameters in fp32 — this module then computes in fp32, see ``Elementwise``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from aaf_search.activations._common import Elementwise, broadcast, scalar_parameter
from aaf_search.activations.registry import ParamShape, Reduction, register

RELU_SHARPNESS = 2.0**16
"""γ (AHAF) and p3 (LEAF) of the "as ReLU" init: u·σ(2^16 u) differs from ReLU(u) by at most 4.3e-6."""

# max_u u·σ(-γu) = 0.2785/γ: the distance from ReLU of the sharp-sigmoid gate, plus fp64 slack.
RELU_ATOL = 1e-5
SHAPES: tuple[ParamShape, ...] = ("network", "layer", "channel", "neuron")


def gelu_sigmoid_approx(x: Tensor) -> Tensor:
    """x·σ(1.702x), the sigmoid approximation of GELU that AHAF (β=1, γ=1.702) reproduces exactly."""
    return x * torch.sigmoid(1.702 * x)


@register
class AHAF(Elementwise):
    """AHAF(u) = β·u·σ(γ·u).

    γ = β = 1 is SiLU, γ → ∞ is β·ReLU, γ = 1.702 is the sigmoid approximation of GELU.
    """

    family = "ahaf"
    summary = "beta u sigmoid(gamma u)"
    source = "seed 001/003: Bodyanskiy & Kostiuk, AHAF (s-kostyuk/ahaf_activation_1, aaf_identification)"
    param_names = ("beta", "gamma")
    shapes: ClassVar[tuple[ParamShape, ...]] = SHAPES
    presets = {
        "as_relu": {"beta": 1.0, "gamma": RELU_SHARPNESS},
        "as_silu": {"beta": 1.0, "gamma": 1.0},
        "as_gelu": {"beta": 1.0, "gamma": 1.702},
        "custom": {"beta": 1.0, "gamma": 10.0},
        "random": {"beta": ("uniform", 0.0, 1.0), "gamma": ("uniform", 0.0, 1.0)},
    }
    default_preset = "as_relu"
    reductions = (
        Reduction("silu", "as_silu", F.silu),
        Reduction("relu", "as_relu", F.relu, atol=RELU_ATOL),
        Reduction("gelu (sigmoid approximation)", "as_gelu", gelu_sigmoid_approx),
    )

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.beta = scalar_parameter(param_shape, 1.0)
        self.gamma = scalar_parameter(param_shape, RELU_SHARPNESS)

    def compute(self, x: Tensor) -> Tensor:
        return broadcast(self.beta, x) * x * torch.sigmoid(broadcast(self.gamma, x) * x)


@register
class LEAF(Elementwise):
    """LEAF(u) = (p1·u + p2)·σ(p3·u) + p4.

    p1: slope of the linear part; p2: offset of the gated term (amplitude for bounded shapes); p3: gate
    sharpness; p4: output shift. Contains AHAF (p2 = p4 = 0), SiLU, ReLU (p3 → ∞), tanh = 2σ(2u) - 1 and σ.
    """

    family = "leaf"
    summary = "(p1 u + p2) sigmoid(p3 u) + p4"
    source = "seed 003: Bodyanskiy & Kostiuk 2023, LEAF, IJC 22(3) (s-kostyuk/leaf-aaf)"
    param_names = ("p1", "p2", "p3", "p4")
    shapes: ClassVar[tuple[ParamShape, ...]] = SHAPES
    presets = {
        "as_relu": {"p1": 1.0, "p2": 0.0, "p3": RELU_SHARPNESS, "p4": 0.0},
        "as_silu": {"p1": 1.0, "p2": 0.0, "p3": 1.0, "p4": 0.0},
        "as_tanh": {"p1": 0.0, "p2": 2.0, "p3": 2.0, "p4": -1.0},
        "as_sigmoid": {"p1": 0.0, "p2": 1.0, "p3": 1.0, "p4": 0.0},
        "custom": {"p1": 1.0, "p2": 0.0, "p3": 10.0, "p4": 0.0},
        "random": {"p1": ("uniform", 0.0, 1.0), "p2": 0.0, "p3": ("uniform", 0.0, 1.0), "p4": 0.0},
    }
    default_preset = "as_relu"
    reductions = (
        Reduction("relu", "as_relu", F.relu, atol=RELU_ATOL),
        Reduction("silu", "as_silu", F.silu),
        Reduction("tanh", "as_tanh", torch.tanh),
        Reduction("sigmoid", "as_sigmoid", torch.sigmoid),
        Reduction("2·relu", {"p1": 2.0, "p2": 0.0, "p3": RELU_SHARPNESS, "p4": 0.0}, lambda x: 2 * F.relu(x), 2e-5),
    )

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.p1 = scalar_parameter(param_shape, 1.0)
        self.p2 = scalar_parameter(param_shape, 0.0)
        self.p3 = scalar_parameter(param_shape, RELU_SHARPNESS)
        self.p4 = scalar_parameter(param_shape, 0.0)

    def compute(self, x: Tensor) -> Tensor:
        p1, p2, p3, p4 = (broadcast(p, x) for p in (self.p1, self.p2, self.p3, self.p4))
        return (p1 * x + p2) * torch.sigmoid(p3 * x) + p4
