"""LSLU's "same" depthwise convolution, with a fast CPU weight gradient for kernels wider than 3.

Why: oneDNN computes the weight gradient of a depthwise convolution with its depthwise kernel only
when the kernel is at most 3 wide. Wider kernels (LSLU's are (2n+1)x(2n+1): 5x5 from n = 2, 7x7 for
the original n = 3) fall to its generic grouped-convolution kernel, which on the 2-core development
machine took 22-25 ms for a 7x7 kernel on a 128x32x32x32 channels-last input, against 2 ms for the
forward pass and 2.5 ms for the input gradient: the largest single cost of an LSLU training step.

The weight gradient of one tap (row offset i, column offset j) is Σ_{n,h,w} gy[n,c,h,w]·x[n,c,h+i,w+j],
so the columns can be computed in blocks of at most 3, each by oneDNN's depthwise kernel: the block of
column offsets -1..1 from ``x`` itself, and offsets ±d, ±(d+1) for d = 2, 4, ... from a copy of ``x``
shifted by ∓d columns. Of a shifted block only the two columns on its far side are used: on its near
side, the convolution's zero padding stands where the shifted-away columns of ``x`` would be. For a
7x7 kernel that is three oneDNN calls and two shifted copies: 8.3 ms instead of 22.2 ms (same shape).

Used on CPU in float32 outside autocast, with oneDNN enabled, for kernels wider than 3 and inputs of at
least :data:`SPLIT_MIN_ELEMENTS` elements, when the kernel is no taller than the image (oneDNN's depthwise
kernel refuses taller ones, and three calls of its generic kernel cost more than one). Everywhere else
(CUDA, small inputs, an outer ``torch.compile``) it is ``F.conv2d`` with plain autograd.
``benchmarks/depthwise_conv.py`` measures both.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

ONEDNN_DEPTHWISE_MAX_WIDTH = 3
"""The widest kernel whose weight gradient oneDNN computes with its depthwise kernel."""

SPLIT_MIN_ELEMENTS = 1 << 18
"""Input elements from which the split weight gradient is used.

Below, its fixed cost (three or five calls and two or four copies) can outweigh the gain: on the
development machine (``benchmarks/depthwise_conv.py``) the split took 0.60 ms against oneDNN's 0.50 ms
for a 5x5 kernel on a 128x16x8x8 input (131k elements), and was faster for every kernel from 128x32x8x8
(262k elements: 0.87 against 0.93 ms for 5x5, 0.96 against 1.57 ms for 7x7) upwards.
"""


def depthwise_conv2d(x: Tensor, weight: Tensor) -> Tensor:
    """The depthwise convolution of ``x`` (N, C, H, W) with ``weight`` (C, 1, k, k), k odd, "same" padding."""
    if uses_split_gradient(x, weight):
        return cast(Tensor, _DepthwiseConv2d.apply(x, weight))
    return _convolution(x, weight)


def _convolution(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x, weight, None, padding=weight.shape[-1] // 2, groups=weight.shape[0])


def uses_split_gradient(x: Tensor, weight: Tensor) -> bool:
    """Whether :func:`depthwise_conv2d` of ``x`` with ``weight`` computes its weight gradient in column blocks."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.shape[-1] > ONEDNN_DEPTHWISE_MAX_WIDTH
        and weight.shape[-2] <= x.shape[-2]
        and x.numel() >= SPLIT_MIN_ELEMENTS
        and weight.requires_grad
        and torch.is_grad_enabled()
        and torch.backends.mkldnn.is_available()
        and bool(torch.backends.mkldnn.enabled)
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


class _DepthwiseConv2d(torch.autograd.Function):
    """``F.conv2d`` forward; backward: oneDNN's input gradient and :func:`weight_gradient`."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return _convolution(x, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = _convolution_backward(grad, x, weight, need_input=True)
        if ctx.needs_input_grad[1]:
            grad_weight = weight_gradient(grad, x, weight.shape)
        return grad_x, grad_weight


def weight_gradient(grad: Tensor, x: Tensor, shape: torch.Size) -> Tensor:
    """∂L/∂weight of the "same" depthwise convolution of ``x``, given ``grad`` = ∂L/∂output.

    ``shape`` is the weight's (C, 1, k_h, k_w), k_w odd; computed in column blocks at most 3 wide
    (see the module docstring). Any dtype and device; exact up to the order of summation.
    """
    channels, _, height, width = shape
    if width <= ONEDNN_DEPTHWISE_MAX_WIDTH:
        return _convolution_backward(grad, x, grad.new_empty(shape), need_input=False)
    half = width // 2
    out = grad.new_empty(shape)
    block_shape = torch.Size((channels, 1, height, ONEDNN_DEPTHWISE_MAX_WIDTH))
    block = grad.new_empty(block_shape)  # only its shape is read

    def columns(source: Tensor) -> Tensor:
        # column offsets -1, 0, 1 relative to `source`, every row offset of the kernel
        return _convolution_backward(grad, source, block, need_input=False)

    out[..., half - 1 : half + 2] = columns(x)
    for shift in range(2, half + 1, 2):
        left = columns(_shift_columns(x, shift))  # offsets -shift-1, -shift (and an invalid -shift+1)
        right = columns(_shift_columns(x, -shift))  # offsets shift, shift+1 (and an invalid shift-1)
        out[..., half - shift] = left[..., 1]
        out[..., half + shift] = right[..., 1]
        if shift < half:
            out[..., half - shift - 1] = left[..., 0]
            out[..., half + shift + 1] = right[..., 2]
    return out


def _shift_columns(x: Tensor, shift: int) -> Tensor:
    """``x`` with column w holding ``x``'s column w - shift (zero where that is outside), same memory format."""
    shifted = torch.zeros_like(x)
    width = x.shape[-1]
    if abs(shift) < width:
        if shift > 0:
            shifted[..., shift:] = x[..., : width - shift]
        else:
            shifted[..., :shift] = x[..., -shift:]
    return shifted


def _convolution_backward(grad: Tensor, x: Tensor, weight: Tensor, *, need_input: bool) -> Tensor:
    """One gradient of a stride-1 depthwise convolution padded by half the kernel: the input's or the weight's."""
    padding = [weight.shape[-2] // 2, weight.shape[-1] // 2]
    mask = [need_input, not need_input, False]  # input, weight, bias
    grads = torch.ops.aten.convolution_backward(
        grad, x, weight, None, [1, 1], padding, [1, 1], False, [0, 0], weight.shape[0], mask
    )
    return cast(Tensor, grads[0] if need_input else grads[1])
