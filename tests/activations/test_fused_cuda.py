"""The fused activations on a CUDA device: compiled (Triton) kernels equal the eager reference.

Skipped where no CUDA device is visible. On a GPU these compile every family's forward and backward
once per dtype (a few seconds each).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fused_cases import DTYPE_TOLERANCE, assert_close_scaled, build_case, case_input, value_and_grads

from aaf_search import activations
from aaf_search.activations import fused
from aaf_search.activations.lslu import LSLU
from aaf_search.activations.registry import ParamShape

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FAMILIES = fused.families()
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _fresh_kernels_and_switch() -> Any:
    fused.clear_cache()
    yield
    fused.set_implementation(None)


def _mode(name: str) -> ParamShape:
    return "channel" if "channel" in activations.get(name).shapes else "layer"


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)  # bf16: autocast's dtype
def test_compiled_kernels_on_cuda_equal_eager(name: str, dtype: torch.dtype) -> None:
    # Parameters in fp32 with a low-precision input: what a module sees under autocast.
    module = build_case(name, _mode(name), torch.float32).to(CUDA)
    x = case_input(name, dtype, seed=1).to(CUDA)
    eager_out, eager_grads = value_and_grads(module, x, "eager")
    fused_out, fused_grads = value_and_grads(module, x, "fused", compile=True)
    kernels = [k for k in fused._CACHE.values() if k.key[0] == name and k.key[2] == "cuda"]
    # The compiled kernels ran, not the eager fallback (LSLU's series sees its BatchNorm's fp32 output).
    assert kernels and all(k.compiled for k in kernels) and sum(k.calls["backward"] for k in kernels) >= 1
    assert fused_out.device.type == "cuda" and fused_out.dtype == dtype
    rel = DTYPE_TOLERANCE[dtype]
    assert_close_scaled(fused_out, eager_out, rel, "output")
    for i, (g_fused, g_eager) in enumerate(zip(fused_grads, eager_grads, strict=True)):
        assert g_fused.dtype == g_eager.dtype
        assert_close_scaled(g_fused, g_eager, rel if i == 0 else 2 * rel, f"gradient {i}")


@pytest.mark.parametrize("name", ["coslu", "lincomb", "fneuron"])
def test_eager_on_cuda_equals_eager_on_cpu(name: str) -> None:
    module = build_case(name, _mode(name), torch.float32)
    x = case_input(name, torch.float32)
    cpu_out, cpu_grads = value_and_grads(module, x, "eager")
    cuda_out, cuda_grads = value_and_grads(module.to(CUDA), x.to(CUDA), "eager")
    torch.testing.assert_close(cuda_out.cpu(), cpu_out)
    for g_cuda, g_cpu in zip(cuda_grads, cpu_grads, strict=True):
        torch.testing.assert_close(g_cuda.cpu(), g_cpu, atol=1e-5, rtol=1e-5)


def test_a_new_batch_size_on_cuda_reuses_the_compiled_kernel() -> None:
    from torch._dynamo.utils import counters

    fused.set_implementation("fused", compile=True)
    module = activations.create("coslu", shape="channel", channels=4).to(CUDA)
    module(torch.randn(8, 4, 5, 5, device=CUDA, requires_grad=True)).sum().backward()
    graphs = counters["stats"]["unique_graphs"]
    module(torch.randn(13, 4, 5, 5, device=CUDA, requires_grad=True)).sum().backward()
    module(torch.randn(2, 4, 5, 5, device=CUDA, requires_grad=True)).sum().backward()
    assert counters["stats"]["unique_graphs"] == graphs


def test_under_bf16_autocast_a_fused_activation_keeps_bf16_and_fp32_parameter_gradients() -> None:
    fused.set_implementation("fused", compile=True)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1).to(CUDA)
    act = activations.create("ahaf", shape="channel", channels=8).to(CUDA)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    x = torch.randn(4, 3, 16, 16, device=CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        hidden = conv(x)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = act(hidden)
    assert hidden.dtype == out.dtype == torch.bfloat16
    assert saved[0] is hidden  # the bf16 input itself is what the backward keeps
    out.float().square().mean().backward()
    grads = [p.grad for p in act.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_lslu_series_and_its_deploy_fusion_on_cuda() -> None:
    fused.set_implementation("fused", compile=True)
    torch.manual_seed(0)
    module = activations.create("lslu", channels=3, n=3).to(CUDA)
    assert isinstance(module, LSLU)
    with torch.no_grad():
        module.weight.normal_(0.0, 0.3)
    module(torch.randn(4, 3, 6, 6, device=CUDA, requires_grad=True)).sum().backward()
    module.eval()
    probe = 3 * torch.randn(2, 3, 7, 5, device=CUDA)
    with torch.no_grad():
        torch.testing.assert_close(module.fuse()(probe), module(probe), atol=1e-5, rtol=1e-5)
