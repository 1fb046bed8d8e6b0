"""Compiled kernels kept as files: what a compilation is specialised to, loading it later, and failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from aaf_search import activations
from aaf_search.activations import fused, fused_kernels, kernel_store
from aaf_search.activations.kernel_store import StoredFunction, StoreStats, prepare


@pytest.fixture(autouse=True)
def _own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(kernel_store.ENV_DIRECTORY, str(tmp_path / "kernels"))
    fused.clear_cache()
    yield
    fused.clear_cache()
    fused.set_implementation(None)


def _signature(*args: Tensor) -> kernel_store.Signature:
    return prepare(args, dynamic=1)[0]


def test_a_signature_keeps_layout_and_unit_dims_of_the_input_and_exact_parameter_shapes() -> None:
    x = torch.randn(8, 4, 5, 5)
    param = torch.ones(4, 1, 1)
    same_layout_other_sizes = torch.randn(3, 7, 2, 9)
    assert _signature(x, param) == _signature(same_layout_other_sizes, param)

    channels_last = x.contiguous(memory_format=torch.channels_last)
    one_row = torch.randn(8, 4, 1, 5)
    empty = torch.randn(0, 4, 5, 5)
    other_param = torch.ones(1)
    variants = [channels_last, one_row, empty, x.double()]
    signatures = {_signature(v, param) for v in [x, *variants]} | {_signature(x, other_param)}
    assert len(signatures) == 6  # each of them compiles its own code


def test_an_input_in_another_layout_is_passed_as_a_contiguous_copy() -> None:
    x = torch.randn(8, 4, 5, 5)
    param = torch.ones(4, 1, 1, requires_grad=True)
    for other in (x.transpose(0, 2), x[:, :, ::2], torch.ones(1).expand(8, 4)):  # expand: a sum()'s gradient
        sig, (passed, passed_param) = prepare([other, param], dynamic=1)
        assert sig == _signature(other.contiguous(), param)
        assert passed.is_contiguous() and torch.equal(passed, other)
        assert passed_param is not param and torch.equal(passed_param, param) and not passed_param.requires_grad
    assert prepare([x, param], dynamic=1)[1][0].data_ptr() == x.data_ptr()  # no copy of a dense input


def _double(x: Tensor, p: Tensor) -> tuple[Tensor]:
    return (2 * x + p,)


def test_a_function_the_tracer_cannot_capture_warns_once_and_runs_the_fallback() -> None:
    def data_dependent(x: Tensor, p: Tensor) -> tuple[Tensor]:
        return (x * float(p.sum()),)  # a Python float from a tensor's value: not traceable

    stored = StoredFunction(data_dependent, ("test", "item"), "digest", 1, _double)
    x = torch.randn(4, 3)
    with pytest.warns(RuntimeWarning, match=r"\('test', 'item'\).*torch.compile instead"):
        (y,) = stored(x, torch.ones(1))
    torch.testing.assert_close(y, 2 * x + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not on every call
        stored(x, torch.ones(1))
    assert stored.stats == StoreStats(fallback_calls=2)


def test_a_file_name_changes_with_the_formulas_source_and_the_signature() -> None:
    sig, other = _signature(torch.randn(2, 3)), _signature(torch.randn(2, 3, 4))
    key = ("coslu", None, "cpu")
    names = {
        kernel_store.file_name(key, "digest", sig),
        kernel_store.file_name(key, "changed formulas", sig),
        kernel_store.file_name(key, "digest", other),
        kernel_store.file_name(("sinlu", None, "cpu"), "digest", sig),
    }
    assert len(names) == 4
    assert kernel_store.file_name(key, "digest", sig) == kernel_store.file_name(key, "digest", sig)


NEW_PROCESS = """
import dataclasses, json, torch
from aaf_search import activations
from aaf_search.activations import fused
fused.set_implementation("fused", compile=True)
module = activations.create("coslu", shape="channel", channels=4)
x = torch.randn(6, 4, 3, 3).contiguous(memory_format=torch.channels_last).requires_grad_(True)
(module(x) ** 2).sum().backward()
(kernel,) = fused._CACHE.values()
stats = [dataclasses.asdict(s.stats) for s in (kernel.stored_forward, kernel.stored_backward)]
print(json.dumps({name: sum(s[name] for s in stats) for name in stats[0]}))
"""


def _stats_in_a_new_process() -> dict[str, int]:
    """What a fresh Python process's first fused forward and backward did (the store from the environment)."""
    done = subprocess.run([sys.executable, "-c", NEW_PROCESS], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    stats: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return stats


def _stored_stats() -> list[StoreStats]:
    (kernel,) = fused._CACHE.values()
    assert kernel.stored_forward is not None and kernel.stored_backward is not None
    return [kernel.stored_forward.stats, kernel.stored_backward.stats]


def _fwd_bwd(module: torch.nn.Module, x: Tensor) -> list[Tensor]:
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    return [out.detach(), *torch.autograd.grad((out * out).sum(), [x, *module.parameters()])]


@pytest.mark.slow
def test_a_later_process_loads_the_stored_kernel_and_recompiles_an_unreadable_file() -> None:
    from torch._dynamo.utils import counters

    fused.set_implementation("eager")
    module = activations.create("coslu", shape="channel", channels=4, init={"a": 0.7, "b": 1.3})
    x = torch.randn(6, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    expected = _fwd_bwd(module, x)
    fused.set_implementation("fused", compile=True)
    graphs = counters["stats"]["unique_graphs"]
    stale = kernel_store.directory() / f"{'0' * 32}{kernel_store.SUFFIX}"  # of an earlier torch, say
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not loaded for a month")
    _age(stale, days=kernel_store.UNUSED_DAYS + 1)

    _fwd_bwd(module, x)
    assert _stored_stats() == [StoreStats(compiled=1), StoreStats(compiled=1)]
    files = sorted(kernel_store.directory().iterdir())
    # Forward and backward, no temporary left, and the stale file deleted when they were stored.
    assert [f.suffix for f in files] == [".pt2", ".pt2"] and stale not in files

    fused.clear_cache()  # what a new worker process starts with
    for f in files:
        _age(f, days=10)
    for value, want in zip(_fwd_bwd(module, x), expected, strict=True):
        torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)
    assert _stored_stats() == [StoreStats(loaded=1), StoreStats(loaded=1)]
    assert all(time.time() - f.stat().st_mtime < 600 for f in files)  # loading marked them used
    assert counters["stats"]["unique_graphs"] == graphs  # no Dynamo on either path
    assert _stats_in_a_new_process() == {"compiled": 0, "loaded": 2, "fallback_calls": 0}

    for f in files:
        f.write_bytes(b"cut short")
    fused.clear_cache()
    for value, want in zip(_fwd_bwd(module, x), expected, strict=True):
        torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)
    assert _stored_stats() == [StoreStats(compiled=1), StoreStats(compiled=1)]
    fused.clear_cache()
    _fwd_bwd(module, x)
    assert _stored_stats() == [StoreStats(loaded=1), StoreStats(loaded=1)]  # written again, whole


def _age(path: Path, *, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_stored_kernels_unused_for_the_set_days_are_deleted(tmp_path: Path) -> None:
    names = ("a" * 32 + ".pt2", "b" * 32 + ".pt2", "exported_model.pt2", "notes.txt")
    unused, recent, *others = (tmp_path / name for name in names)
    for path in (unused, recent, *others):
        path.write_bytes(b"x")
    _age(unused, days=31)
    _age(recent, days=29)
    for path in others:  # not stored kernels (torch.export writes .pt2 files too): never touched
        _age(path, days=400)
    assert kernel_store.evict_unused(tmp_path, days=30) == [unused]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names[1:])


def _coslu(x: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor]:
    return (fused_kernels.coslu_fwd(x, a, b),)


@pytest.mark.slow
def test_a_call_outside_what_the_code_was_compiled_for_fails_loudly() -> None:
    # Per-channel parameters of 4 values fix the input's channels at 4 in the compiled code; the
    # signature does not record that size (only which dims are 0 or 1), so the code's own check must.
    stored = StoredFunction(_coslu, ("test", "coslu"), "digest", 1, _coslu)
    a, b = torch.rand(4, 1, 1), torch.rand(4, 1, 1)
    for x in (torch.randn(2, 4, 3, 3), torch.randn(5, 4, 7, 2)):
        torch.testing.assert_close(stored(x, a, b), _coslu(x, a, b))
    with pytest.raises(AssertionError, match="expected size"):
        stored(torch.randn(2, 8, 3, 3), a, b)
    assert stored.stats == StoreStats(compiled=1)
