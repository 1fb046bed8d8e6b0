"""Shared machinery of the element-wise activation families: dtype handling and parameter broadcasting."""

from __future__ import annotations

from collections.abc import Hashable

import torch
from torch import Tensor, nn

from aaf_search.activations import fused
from aaf_search.activations.registry import Activation, ActivationError


class Elementwise(Activation):
    """Base of the families whose output at each element depends only on that element.

    ``forward`` computes in the wider of the input's and the parameters' dtypes and returns the input's
    dtype. Why: a bf16 network whose activation parameters stay fp32 keeps bf16 activations (half the
    memory), while LEAF's and AHAF's ``p3 = γ = 2^16`` and APA's ``log λ`` are evaluated in fp32. When the
    whole module is cast (``.to(torch.bfloat16)``) everything runs in that dtype, as usual in PyTorch.

    Families with a fused kernel (:mod:`aaf_search.activations.fused`) take that path when the
    implementation switch selects it; ``compute`` stays the reference formula the fused one is tested
    against.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_floating_point():
            raise ActivationError(f"activation '{self.family}' needs a floating-point input, got {x.dtype}")
        options = self.fused_options()
        if self.param_names and fused.uses_fused(self.family, x, options=options, trained_fused=self.trained_fused):
            if torch.is_grad_enabled():
                self.trained_fused = True
            return fused.apply(self.family, options, x, self.fused_params(x))
        work = self._work_dtype(x)
        return self.compute(x.to(work)).to(x.dtype)

    def fused_options(self) -> Hashable:
        """The static options the fused kernel is built for (part of its cache key); none by default."""
        return None

    def fused_params(self, x: Tensor) -> list[Tensor]:
        """The parameters as the fused kernel takes them: each broadcastable to ``x``."""
        return [broadcast(getattr(self, name), x) for name in self.param_names]

    def compute(self, x: Tensor) -> Tensor:
        """The activation, with ``x`` already in the working dtype."""
        raise NotImplementedError

    def _work_dtype(self, x: Tensor) -> torch.dtype:
        if not self.param_names:
            return x.dtype
        return torch.promote_types(x.dtype, getattr(self, self.param_names[0]).dtype)


def broadcast(p: Tensor, x: Tensor) -> Tensor:
    """View a per-channel parameter ``(C, 1, ..., 1)`` so that it broadcasts over dim 1 of ``x``.

    The registry shapes per-channel parameters for the input rank it knows (``(C, 1, 1)`` when it only
    knows ``channels``); this makes the same module correct on ``(N, C)`` and ``(N, C, L)`` inputs too,
    where plain broadcasting would silently align C with the last dimension. Scalars ``(1,)`` and
    per-neuron shapes pass through unchanged.
    """
    channels = p.shape[0] if p.ndim else 1
    if channels > 1 and p.numel() == channels and p.ndim != x.ndim - 1:
        return p.view(channels, *([1] * (x.ndim - 2)))
    return p


def scalar_parameter(param_shape: tuple[int, ...], value: float) -> nn.Parameter:
    """A parameter of ``param_shape`` filled with ``value`` (the registry's preset then overwrites it)."""
    return nn.Parameter(torch.full(param_shape, float(value)))
