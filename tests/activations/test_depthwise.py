"""LSLU's depthwise convolution: the split weight gradient equals the convolution's, and is used where it pays."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from aaf_search.activations import create, depthwise
from aaf_search.activations.depthwise import SPLIT_MIN_ELEMENTS, _DepthwiseConv2d, depthwise_conv2d, weight_gradient


def reference_gradients(x: Tensor, weight: Tensor, grad: Tensor) -> tuple[Tensor, ...]:
    x, weight = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
    y = F.conv2d(x, weight, None, padding=weight.shape[-1] // 2, groups=weight.shape[0])
    return torch.autograd.grad(y, (x, weight), grad)


@pytest.mark.parametrize(
    ("size", "kernel"),
    [
        ((2, 3, 6, 5), 5),
        ((2, 3, 6, 5), 7),
        ((1, 2, 4, 3), 9),  # shifts of 2 and 4 columns: the second moves every column out
        ((3, 2, 5, 12), 11),
        ((2, 4, 7, 7), 3),  # 3 wide: oneDNN's own kernel, no split
    ],
)
def test_split_weight_gradient_equals_the_convolutions_in_float64(size: tuple[int, ...], kernel: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(size, dtype=torch.float64)
    weight = torch.randn(size[1], 1, kernel, kernel, dtype=torch.float64)
    grad = torch.randn(size, dtype=torch.float64)
    expected = reference_gradients(x, weight, grad)[1]
    torch.testing.assert_close(weight_gradient(grad, x, weight.shape), expected, rtol=1e-12, atol=1e-12)


def test_function_passes_gradcheck() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 1, 7, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_DepthwiseConv2d.apply, (x, weight))


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("kernel", [5, 7, 9])
def test_large_float32_input_takes_the_split_path_with_the_same_values(
    kernel: int, memory_format: torch.memory_format
) -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 8, 32, 32).contiguous(memory_format=memory_format).requires_grad_(True)
    assert x.numel() >= SPLIT_MIN_ELEMENTS
    weight = torch.randn(8, 1, kernel, kernel, requires_grad=True)
    grad = torch.randn_like(x)
    y = depthwise_conv2d(x, weight)
    assert type(y.grad_fn).__name__ == "_DepthwiseConv2dBackward"
    grad_x, grad_weight = torch.autograd.grad(y, (x, weight), grad)
    expected_x, expected_weight = reference_gradients(x, weight, grad)
    torch.testing.assert_close(y, F.conv2d(x, weight, None, padding=kernel // 2, groups=8), rtol=0, atol=0)
    torch.testing.assert_close(grad_x, expected_x, rtol=0, atol=0)
    # float32 sums over 32k products per tap, in another order
    torch.testing.assert_close(grad_weight, expected_weight, rtol=1e-4, atol=1e-4 * expected_weight.abs().max().item())


@pytest.mark.parametrize(
    ("case", "size", "kernel"),
    [
        ("small input", (2, 8, 8, 8), 7),
        ("3-wide kernel", (32, 8, 32, 32), 3),
        ("kernel taller than the image", (128, 8, 6, 64), 7),
        ("float64", (32, 8, 32, 32), 7),
    ],
)
def test_other_inputs_use_the_plain_convolution(case: str, size: tuple[int, ...], kernel: int) -> None:
    dtype = torch.float64 if case == "float64" else torch.float32
    x = torch.randn(size, dtype=dtype)
    weight = torch.randn(size[1], 1, kernel, kernel, dtype=dtype, requires_grad=True)
    assert type(depthwise_conv2d(x, weight).grad_fn).__name__ == "ConvolutionBackward0"


def test_inference_and_frozen_weights_use_the_plain_convolution() -> None:
    x = torch.randn(32, 8, 32, 32)
    weight = torch.randn(8, 1, 7, 7)
    assert depthwise_conv2d(x, weight).grad_fn is None
    with torch.no_grad():
        assert depthwise_conv2d(x, weight.requires_grad_(True)).grad_fn is None


def test_lslu_weight_gradient_is_the_same_with_and_without_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    lslu = create("lslu", shape="layer", channels=8, n=3)
    x = torch.randn(32, 8, 32, 32).contiguous(memory_format=torch.channels_last)
    split_calls = []

    def counted(grad: Tensor, x: Tensor, shape: torch.Size) -> Tensor:
        split_calls.append(shape)
        return weight_gradient(grad, x, shape)

    monkeypatch.setattr(depthwise, "weight_gradient", counted)
    lslu(x).square().mean().backward()
    assert split_calls == [torch.Size((8, 1, 7, 7))]
    assert lslu.weight.grad is not None
    with_split = lslu.weight.grad.clone()

    lslu.zero_grad()
    monkeypatch.setattr(depthwise, "SPLIT_MIN_ELEMENTS", x.numel() + 1)
    lslu(x).square().mean().backward()
    assert len(split_calls) == 1
    torch.testing.assert_close(lslu.weight.grad, with_split, rtol=1e-4, atol=1e-4 * with_split.abs().max().item())
