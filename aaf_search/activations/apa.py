"""Seed 004: APA and AGLU, "Adaptive Parametric Activation" (Alexandridis et al., ECCV 2024, arXiv 2407.08567).

Code: ``kostas1515/AGLU`` (``classification/resnet_cifar.py``, ``resnet_pytorch.py``: ``Unified`` = APA,
``UniRect`` = AGLU; ``mmdet/models/backbones/{se_resnet,swin}.py``).

    APA(z)  = (λ·e^{-κz} + 1)^{-1/λ}
            = exp(-softplus(log λ - κz) / λ),       λ clamped at 1e-4 (as the code)
    AGLU(z) = z · APA(z)

The log-space form is what every copy of the original computes (via ``Softplus(beta=-1)``), and the
reason it is safe: no power of a huge base, and the clamp keeps 1/λ finite (λ = 1e-4 matches the Gumbel
limit λ → 0 to ~2e-5). It also compiles to a fast fused kernel (see DESIGN.md).

Fix: the classification and Swin ``UniRect`` use a hand-written backward whose λ gradient drops the
(z·p/λ²)·ln(1 + λe^{-κz}) term (wrong by 100 % at λ = κ = 1); here gradients come from autograd, which
matches the mmdet SE-ResNet variant (plain autograd) and finite differences.

Parameters ``lam`` (λ; init key ``"lambda"`` works too) and ``kappa`` (κ), one pair per module in the
original (shape ``"layer"``); ``"channel"`` is the original's ``num_parameters=C`` option.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from aaf_search.activations._common import Elementwise, broadcast, scalar_parameter
from aaf_search.activations.registry import ParamShape, Reduction, register

LAMBDA_MIN = 1e-4  # the mmdet/README clamp; the classification code's relu(λ) + 1e-8 can reach 1/λ = 1e8
SOURCE = "seed 004: Alexandridis et al. 2024, APA/AGLU, ECCV (kostas1515/AGLU)"
SHAPES: tuple[ParamShape, ...] = ("network", "layer", "channel")


def apa(z: Tensor, lam: Tensor, kappa: Tensor) -> Tensor:
    """(λ·e^{-κz} + 1)^{-1/λ} in log space, with λ clamped at 1e-4."""
    lam = lam.clamp(min=LAMBDA_MIN)
    return torch.exp(-F.softplus(torch.log(lam) - kappa * z) / lam)


def gumbel_cdf(z: Tensor) -> Tensor:
    """exp(-e^{-z}), the λ → 0 limit of APA with κ = 1."""
    return torch.exp(-torch.exp(-z))


def _gelu_sigmoid_approx(z: Tensor) -> Tensor:
    return z * torch.sigmoid(1.702 * z)


class _Parametric(Elementwise):
    source: ClassVar[str] = SOURCE
    shapes: ClassVar[tuple[ParamShape, ...]] = SHAPES
    param_names = ("lam", "kappa")
    init_aliases = {"lambda": "lam"}

    def __init__(self, *, param_shape: tuple[int, ...]) -> None:
        super().__init__()
        # Placeholders; every preset (the random defaults included) overwrites both.
        self.lam = scalar_parameter(param_shape, 1.0)
        self.kappa = scalar_parameter(param_shape, 1.0)

    def gate(self, z: Tensor) -> Tensor:
        return apa(z, broadcast(self.lam, z), broadcast(self.kappa, z))


@register
class APA(_Parametric):
    """APA(z) = (λe^{-κz} + 1)^{-1/λ}: a learnable sigmoid (λ=κ=1) / Gumbel CDF (λ→0) gate.

    Default init as the code (``resnet_cifar.py``, ``resnet_pytorch.py``, mmdet ``se_resnet.py``):
    λ ~ U(0, 1), κ ~ U(-1, 0) (a decreasing gate at init); ``readme``: κ ~ U(0, 1).
    """

    family = "apa"
    summary = "(lambda exp(-kappa z) + 1)^(-1/lambda)"
    presets = {
        "default": {"lam": ("uniform", 0.0, 1.0), "kappa": ("uniform", -1.0, 0.0)},
        "readme": {"lam": ("uniform", 0.0, 1.0), "kappa": ("uniform", 0.0, 1.0)},
        "as_sigmoid": {"lam": 1.0, "kappa": 1.0},
        "as_gumbel": {"lam": LAMBDA_MIN, "kappa": 1.0},
    }
    default_preset = "default"
    reductions = (
        Reduction("sigmoid", "as_sigmoid", torch.sigmoid),
        Reduction("sigmoid(-z)", {"lam": 1.0, "kappa": -1.0}, lambda z: torch.sigmoid(-z)),
        # λ is clamped at 1e-4, so the Gumbel limit is met to ~2e-5 on [-3, 3].
        Reduction("gumbel cdf", "as_gumbel", gumbel_cdf, atol=5e-5),
    )

    def compute(self, x: Tensor) -> Tensor:
        return self.gate(x)


@register
class AGLU(_Parametric):
    """AGLU(z) = z·APA(z): SiLU at λ=κ=1, sigmoid-GELU at κ=1.702, ReLU as κ → ∞.

    Default init as the classification code (λ ~ U(0, 1), κ ~ U(0.8, 1.2)); ``se_resnet`` and ``swin``
    are the mmdet variants' inits.
    """

    family = "aglu"
    summary = "z (lambda exp(-kappa z) + 1)^(-1/lambda)"
    presets = {
        "default": {"lam": ("uniform", 0.0, 1.0), "kappa": ("uniform", 0.8, 1.2)},
        "se_resnet": {"lam": ("uniform", 0.0, 1.0), "kappa": ("uniform", 1.0, 1.3)},
        "swin": {"lam": ("uniform", 0.1, 1.0), "kappa": ("uniform", 0.0, 1.0)},
        "as_silu": {"lam": 1.0, "kappa": 1.0},
        "as_gelu": {"lam": 1.0, "kappa": 1.702},
        "as_relu": {"lam": 1.0, "kappa": 1e4},
    }
    default_preset = "default"
    reductions = (
        Reduction("silu", "as_silu", F.silu),
        Reduction("gelu (sigmoid approximation)", "as_gelu", _gelu_sigmoid_approx),
        # max_z z·σ(-κz) = 0.2785/κ: the sharp gate's distance from ReLU.
        Reduction("relu", "as_relu", F.relu, atol=5e-5),
        Reduction("identity / 2", {"lam": 1.0, "kappa": 0.0}, lambda z: z / 2),
    )

    def compute(self, x: Tensor) -> Tensor:
        return x * self.gate(x)
