"""Fused implementations of the trainable element-wise activations, and the switch that selects them.

Why: written the obvious eager way, a trainable activation launches one kernel per operation and autograd
keeps every intermediate for the backward pass (CosLU: 5.6x ReLU's saved memory, LinComb 6.5x; see
DESIGN.md). Here each family is ONE ``torch.autograd.Function`` that

- saves only its input and its (tiny) parameters, and recomputes everything else in backward, so the
  memory kept for backward equals SiLU's;
- evaluates the forward as one fused expression and the backward (gradient w.r.t. the input and every
  parameter, the parameter gradients summed to the parameter's shape) as another, from the hand-derived
  formulas in :mod:`aaf_search.activations.fused_kernels`;
- compiles both with symbolic sizes, so a new batch size (the last, smaller batch of an epoch) does not
  recompile: on the CPU into files that later processes load in milliseconds
  (:mod:`aaf_search.activations.kernel_store`), on CUDA with ``torch.compile(dynamic=True)`` (so too on
  the CPU with ``AAF_KERNEL_STORE=0``, or where tracing a kernel fails); without a working compiler, or
  with compilation switched off, the same formulas run eagerly (same memory, no speed-up).

Compiled functions live in a process-wide cache keyed by (family, static options, device type, input
dtype, parameter dtype): compilation is paid once per worker process and input layout, not per trial or
module, and on the CPU once per machine. Each key gets its own code object, so dynamo's per-code
recompile limit (8) is never shared between families and dtypes.

The switch (:func:`set_implementation`, or the environment variable ``AAF_ACTIVATION_IMPL``):

- ``"eager"``: the reference modules, plain autograd;
- ``"fused"``: the fused Function for every family that has one;
- ``"auto"`` (default): fused where ``benchmarks/fused_crossover.py`` showed it faster than eager on
  that device type and input size (:data:`AUTO_FUSED`), eager elsewhere; without gradients (validation)
  likewise from :data:`AUTO_FUSED_INFERENCE`, for modules that trained on the fused path. Within
  :func:`trial_plan` (every training run of a trial), a kernel also has to repay its compilation over
  the run's steps (:data:`AUTO_AMORTISED`).

``AAF_ACTIVATION_COMPILE=0`` (or ``set_implementation(..., compile=False)``) keeps the fused Function but
runs its formulas eagerly. Inside an outer ``torch.compile`` (the whole model compiled) the reference
formula is used, so the outer compiler sees plain operations it can fuse itself. Ray workers are separate
processes: use the environment variable there (``set_implementation`` changes only the calling process).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import sys
import types
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import torch
import torch.fx.experimental._config as fx_config
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from aaf_search.activations import fused_kernels, kernel_store
from aaf_search.activations.fused_kernels import KERNELS, Backward, Forward
from aaf_search.activations.registry import Activation, ActivationError
from aaf_search.envflags import switched_on

T = TypeVar("T")
Implementation = Literal["eager", "fused", "auto"]
IMPLEMENTATIONS: tuple[Implementation, ...] = ("eager", "fused", "auto")
ENV_IMPL = "AAF_ACTIVATION_IMPL"
ENV_COMPILE = "AAF_ACTIVATION_COMPILE"
DEFAULT_IMPLEMENTATION: Implementation = "auto"
COMPILED_DEVICES = ("cpu", "cuda")  # device types where torch.compile (inductor) generates fused kernels

AUTO_FUSED: dict[tuple[str, bool], dict[str, int]] = {
    # (device type, compiled) -> {family: input elements from which "auto" takes the fused path}.
    # benchmarks/fused_crossover.py measured, per family, from which input size a fused forward and
    # backward stays faster than the eager reference (2-core CPU, fp32, the stored kernels of
    # kernel_store; the larger size of two runs). A fused call costs a fixed amount more (CosLU on a
    # 16 x 4 input: 130 microseconds; 310 under torch.compile, with Dynamo's guards, when these sizes
    # were up to 16x larger), and less per element. APA's and AGLU's fused forms save little at any size
    # (log1p and exp dominate): their ratios hovered at 0.6-1.07 from 2^12 to 2^20 elements, so the
    # larger of two runs put their thresholds late (under torch.compile: 2^18 and 2^17).
    # Every family is fused on the 4-conv network of benchmarks/activations.py (4M elements per
    # activation). Without compilation the fused formulas save memory but were not shown faster: eager.
    # LSLU (its whole module, the series with its depthwise conv and BatchNorm, on (N, 16, 16, 16)
    # channels-last inputs): every series length n is a kernel of its own, so a search over n
    # (lslu_depth) would compile in most of a worker's first trials; the plan (AUTO_AMORTISED) keeps
    # short runs eager, as for every family.
    ("cpu", True): {
        "aglu": 1 << 19,
        "ahaf": 1 << 17,
        "apa": 1 << 20,
        "coslu": 1 << 14,
        "delu": 1 << 12,
        "fneuron": 1 << 12,
        "leaf": 1 << 15,
        "lincomb": 1 << 12,
        "lslu": 1 << 15,
        "normlincomb": 1 << 12,
        "relun": 1 << 14,
        "scaledsoftsign": 1 << 16,
        "shilu": 1 << 18,
        "sinlu": 1 << 14,
    },
    # CUDA (H200, torch 2.11, bf16 inputs with fp32 parameters, as under autocast): a fused call costs
    # about 0.1 ms more in Python and dispatch than an eager one, which on a GPU is more than the eager
    # kernels take up to millions of elements. Fused was faster from 2^12 elements for F-neuron (its
    # eager form is gather-heavy), from 2^23-2^24 for LinComb, CosLU and APA, never for AHAF (to 2^24).
    # The other families were measured before the two-stage parameter sums (fused_kernels.sum_to) and
    # stay eager until measured again.
    ("cuda", True): {
        "apa": 1 << 24,
        "coslu": 1 << 24,
        "fneuron": 1 << 12,
        "lincomb": 1 << 23,
    },
}

AUTO_FUSED_INFERENCE: dict[tuple[str, bool], dict[str, int]] = {
    # The same for a forward without gradients (validation passes), from
    # ``benchmarks/fused_crossover.py --inference`` (2-core CPU, fp32, the stored kernels of kernel_store;
    # the larger size of two runs). Eager inference runs each operation as its own pass over memory, so
    # fused was up to 8x faster on 2^20 elements (F-neuron; DELU 6x, LinComb 4x); ShiLU's eager form is
    # two cheap kernels and stays faster up to 2^17 elements, ReLUN's one clamp (in one of the two runs)
    # up to 2^20: ReLUN evaluates eagerly. Only modules whose training took the fused path use it (see
    # uses_fused). CUDA: not measured for inference, eager.
    ("cpu", True): {
        "aglu": 1 << 15,
        "ahaf": 1 << 17,
        "apa": 1 << 19,
        "coslu": 1 << 16,
        "delu": 1 << 12,
        "fneuron": 1 << 12,
        "leaf": 1 << 16,
        "lincomb": 1 << 12,
        "lslu": 1 << 18,
        "normlincomb": 1 << 12,
        "scaledsoftsign": 1 << 17,
        "shilu": 1 << 18,
        "sinlu": 1 << 16,
    },
}

AUTO_AMORTISED: dict[tuple[str, bool], dict[str, float]] = {
    # (device type, compiled) -> {family: element-steps from which a trial's training takes the fused path}.
    # A kernel new to the machine compiled in 3.6-9.3 s on the 2-core CPU (F-neuron 13 s;
    # benchmarks/compile_cost.py: Dynamo, Inductor and g++ for its forward and backward on a conv net's
    # channels-last activation); from Inductor's on-disk cache in 0.4-3.8 s. The fused path saved 1.5-45 ns
    # per element and step over eager (same script, 2^22 elements), so a compilation repays itself only
    # over 3 x 10^8 - 3 x 10^9 element-steps: the elements of one step's calls to the kernel, times the
    # run's steps. A digits MLP's LinComb trial is 3.5 x 10^6 (dnn3: 64 x (392 + 196) elements a step, 92
    # steps), and lincomb_bases compiled a new kernel for almost every trial: 6 trials took 44 s with
    # compilations, 3 s eager. The values are the script's break-even sizes for a cold compile (one run,
    # rounded). Whole KerasNet trials with CosLU gained about half what they predict (README, Compilation):
    # a run of up to twice the break-even may lose about one compilation's time. Measured again on the
    # stored kernels (kernel_store: 2.9-12.4 s cold), the break-evens came out within 0.6-1.7x of these,
    # which stay; LSLU's (n = 3, the whole module on the same input) was measured there alone. CUDA was
    # not measured: the size rule alone.
    ("cpu", True): {
        "aglu": 2.8e9,
        "ahaf": 1.8e9,
        "apa": 3.0e9,
        "coslu": 1.3e9,
        "delu": 3.4e8,
        "fneuron": 2.9e8,
        "leaf": 1.5e9,
        "lincomb": 7.6e8,
        "lslu": 7.4e8,
        "normlincomb": 6.0e8,
        "relun": 6.5e8,
        "scaledsoftsign": 1.1e9,
        "shilu": 3.0e9,
        "sinlu": 2.1e9,
    },
}

KernelKey = tuple[str, Hashable]
"""(family, static options): the modules of one trial that share a compiled kernel."""

_census: ContextVar[list[tuple[KernelKey, int]] | None] = ContextVar("aaf_fused_census", default=None)
_planned: ContextVar[frozenset[KernelKey] | None] = ContextVar("aaf_fused_plan", default=None)

_implementation: Implementation | None = None  # None: read the environment
_compile: bool | None = None  # None: read the environment


def set_implementation(impl: str | None, *, compile: bool | None = None) -> None:
    """Select ``"eager"``, ``"fused"`` or ``"auto"`` for this process; ``None`` returns to the environment.

    ``compile=False`` runs the fused formulas without ``torch.compile``; ``None`` reads
    ``AAF_ACTIVATION_COMPILE`` (default on). Takes effect at the next forward call of every module.
    """
    global _implementation, _compile
    _implementation = None if impl is None else _parse(impl, "set_implementation")
    _compile = compile


def implementation() -> Implementation:
    """The selected implementation: :func:`set_implementation`, else ``AAF_ACTIVATION_IMPL``, else auto."""
    if _implementation is not None:
        return _implementation
    value = os.environ.get(ENV_IMPL, "").strip()
    return _parse(value, ENV_IMPL) if value else DEFAULT_IMPLEMENTATION


def compile_enabled() -> bool:
    """Whether the fused formulas are compiled (``AAF_ACTIVATION_COMPILE=0`` or ``compile=False``: no)."""
    if _compile is not None:
        return _compile
    return switched_on(ENV_COMPILE)


def _parse(value: str, where: str) -> Implementation:
    key = value.lower()
    if key not in IMPLEMENTATIONS:
        raise ActivationError(
            f"{where}: unknown activation implementation '{value}'; choose one of: eager, fused, auto"
        )
    return cast(Implementation, key)


def families() -> list[str]:
    """The families that have a fused implementation."""
    return sorted(KERNELS)


def uses_fused(family: str, x: Tensor, *, options: Hashable = None, trained_fused: bool = False) -> bool:
    """Whether a module of ``family`` (with static ``options``) should take the fused path for input ``x``.

    Checked per call. "auto" decides by input size, from :data:`AUTO_FUSED` when gradients are on and
    from :data:`AUTO_FUSED_INFERENCE` under ``torch.no_grad`` (a validation pass; ``torch.inference_mode``
    stays eager); within :func:`trial_plan`, training takes it only for the kernels the plan chose.
    Inference takes the fused path only for a module whose training forward has taken it
    (``trained_fused``): its kernel is compiled by then, so a validation pass never waits for a
    compilation of its own (seconds, for a pass that may take milliseconds), and the choice depends on
    the module's own trial, not on what the process ran before, so a replay evaluates with the same
    formulas.
    """
    if family not in KERNELS:
        return False
    impl = implementation()
    if impl == "eager" or torch.compiler.is_compiling():
        return False
    if impl == "fused":
        return True
    census = _census.get()
    if census is not None:  # trial_plan's counting pass: note the call, compute eagerly
        census.append(((family, options), x.numel()))
        return False
    training = torch.is_grad_enabled()
    if not training and (not trained_fused or torch.is_inference_mode_enabled()):
        # Inference mode is a global state the compiled graph's guards check: it would compile once more.
        return False
    if training:
        planned = _planned.get()
        if planned is not None and (family, options) not in planned:
            return False
    return x.numel() >= _fused_from(family, x.device.type, training)


def trained_families(model: nn.Module) -> tuple[str, ...]:
    """The activation families in ``model`` that have trained on the fused path (sorted, once each)."""
    return tuple(sorted({m.family for m in model.modules() if isinstance(m, Activation) and m.trained_fused}))


def _fused_from(family: str, device_type: str, training: bool) -> float:
    """The input size from which "auto" takes the fused path (inf: never)."""
    table = AUTO_FUSED if training else AUTO_FUSED_INFERENCE
    return table.get((device_type, _compiles_on(device_type)), {}).get(family, float("inf"))


def _compiles_on(device_type: str) -> bool:
    """Whether the fused kernels for ``device_type`` are compiled (the second key of the "auto" tables)."""
    return compile_enabled() and device_type in COMPILED_DEVICES


@contextmanager
def trial_plan(model: nn.Module, batch: Tensor, steps: int) -> Iterator[None]:
    """Within: "auto" trains on the fused path only the kernels that repay their compilation in ``steps``.

    One forward of ``batch`` without gradients, in eval mode (batch-norm statistics stay as they were),
    counts the input elements of every call the model makes to each kernel (a family with its static
    options: LinComb's bases, ...), where the call is large enough for the fused path (:data:`AUTO_FUSED`).
    A kernel is planned fused when those elements times ``steps`` reach the family's break-even
    (:data:`AUTO_AMORTISED`); families without a measured break-even keep the size rule alone.

    The plan assumes the kernel is compiled in this run, even where the process compiled it before or
    (on the CPU) an earlier process stored it: the choice depends on the run alone (model, data shapes,
    steps), so a replay computes with the same formulas. Outside "auto", or for a run of no steps, a no-op.
    """
    if implementation() != "auto" or steps == 0:
        yield
        return
    counted: list[tuple[KernelKey, int]] = []
    token = _census.set(counted)
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(batch)
    finally:
        _census.reset(token)
        model.train(training)
    token_plan = _planned.set(planned_kernels(counted, steps, batch.device.type))
    try:
        yield
    finally:
        _planned.reset(token_plan)


def planned_kernels(calls: Sequence[tuple[KernelKey, int]], steps: int, device_type: str) -> frozenset[KernelKey]:
    """The kernels whose calls (key, input elements) in one step, over ``steps``, repay a compilation."""
    break_even = AUTO_AMORTISED.get((device_type, _compiles_on(device_type)), {})
    per_step: dict[KernelKey, int] = {}
    for key, elements in calls:
        if elements >= _fused_from(key[0], device_type, training=True):
            per_step[key] = per_step.get(key, 0) + elements
    return frozenset(key for key, elements in per_step.items() if elements * steps >= break_even.get(key[0], 0))


def apply(family: str, options: Hashable, x: Tensor, params: Sequence[Tensor]) -> Tensor:
    """The fused activation ``family`` of ``x``; ``params`` broadcast to ``x`` (or as the kernel expects).

    Computes in the wider of the input's and the parameters' dtypes and returns the input's dtype, like
    :class:`~aaf_search.activations._common.Elementwise`; the cast happens inside the fused kernel, so
    a bf16 input is saved for backward in bf16.
    """
    kernel = get_kernel(family, options, x.device, x.dtype, params[0].dtype)
    return cast(Tensor, _FusedFunction.apply(kernel, x, *params))


class _FusedFunction(torch.autograd.Function):
    """y = kernel.forward(x, *params); saves (x, *params) only, recomputes in backward.

    The forward takes ``ctx`` itself instead of a separate ``setup_context``: with ``setup_context``,
    every call binds its arguments through ``inspect.signature`` (50 µs per call on the development
    machine, against 10 µs for this form), and torch.func transforms, which need it, are not used here.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, kernel: Kernel, x: Tensor, *params: Tensor) -> Tensor:
        ctx.kernel = kernel  # type: ignore[attr-defined]
        ctx.save_for_backward(x, *params)
        return kernel.forward(x, *params)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, *params = ctx.saved_tensors
        grads = ctx.kernel.backward(grad, x, *params)
        needed = ctx.needs_input_grad[1:]
        return (None, *(g if need else None for g, need in zip(grads, needed, strict=True)))


@dataclass
class Kernel:
    """One cache entry: a family's forward/backward for one (options, device type, dtypes), maybe compiled.

    The wrappers cast to the working dtype and back inside the (compiled) function, so the casts fuse
    into the kernel. A compilation failure (no C++ compiler, an unsupported op) is reported once and
    the entry falls back to the eager formulas for good.
    """

    key: tuple[Hashable, ...]
    eager_forward: Forward
    eager_backward: Backward
    compiled: bool
    compiled_forward: Forward | None = None
    compiled_backward: Backward | None = None
    stored_forward: kernel_store.StoredFunction | None = None  # on the CPU: compiled_* call these
    stored_backward: kernel_store.StoredFunction | None = None
    calls: dict[str, int] = field(default_factory=lambda: {"forward": 0, "backward": 0})

    def forward(self, x: Tensor, *params: Tensor) -> Tensor:
        self.calls["forward"] += 1
        if self.compiled_forward is not None:
            try:
                return self.compiled_forward(x, *params)
            except Exception as exc:  # compilation problems surface as many exception types
                self._give_up(exc)
        return self.eager_forward(x, *params)

    def backward(self, grad: Tensor, x: Tensor, *params: Tensor) -> tuple[Tensor, ...]:
        self.calls["backward"] += 1
        if self.compiled_backward is not None:
            try:
                return self.compiled_backward(grad, x, *params)
            except Exception as exc:
                self._give_up(exc)
        return self.eager_backward(grad, x, *params)

    def _give_up(self, exc: Exception) -> None:
        # The eager formulas are re-run right after this: an error that is not about compilation (a bad
        # input) is raised again from there, with the eager traceback.
        warnings.warn(
            f"aaf_search: compiling the fused activation {self.key} failed ({type(exc).__name__}: {exc}); "
            "using the eager formulas (set AAF_ACTIVATION_COMPILE=0 to skip compiling)",
            RuntimeWarning,
            stacklevel=3,
        )
        self.compiled, self.compiled_forward, self.compiled_backward = False, None, None


def _without_duck_sizing(compiled: Callable[..., T]) -> Callable[..., T]:
    """``compiled`` called with Dynamo's duck sizing off, so that a compilation it triggers does not share sizes.

    Why: with duck sizing (Dynamo's default), input dims of equal size get one symbol, and the graph is
    guarded on that equality. A conv net's first activation, 64 x 32 x 32 x 32 (batch 64, 32 channels),
    compiled a graph valid only where C = H = W, and the next shape compiled again (forward and backward:
    a KerasNet CosLU trial compiled 4 graphs for 18 s instead of 2). The setting is read when Dynamo
    compiles; set and restored around each call (7 µs), it leaves other compilations in the process alone.
    """

    def call(*args: Tensor) -> T:
        saved = fx_config.use_duck_shape
        fx_config.use_duck_shape = False
        try:
            return compiled(*args)
        finally:
            fx_config.use_duck_shape = saved

    return call


_CACHE: dict[tuple[Hashable, ...], Kernel] = {}


def get_kernel(
    family: str, options: Hashable, device: torch.device, dtype: torch.dtype, param_dtype: torch.dtype
) -> Kernel:
    """The cached kernel for this key, built (and wrapped in ``torch.compile``) on first use."""
    compiled = _compiles_on(device.type)
    key = (family, options, device.type, dtype, param_dtype, compiled)
    kernel = _CACHE.get(key)
    if kernel is None:
        forward, backward = KERNELS[family].build(options)
        work = torch.promote_types(dtype, param_dtype)
        eager_forward, eager_backward = _with_casts(forward, backward, work)
        kernel = Kernel(key, eager_forward, eager_backward, compiled)
        if compiled:
            if device.type == "cpu":
                # Inductor's CPU path imports cpp_extension, which warns about CUDA_HOME on machines that
                # have a CUDA toolkit but no GPU: irrelevant to a CPU kernel, and printed into every search.
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            tag = _tag(family, dtype, param_dtype, len(_CACHE))
            dynamo_forward = _dynamo_compiled(eager_forward, f"{tag}_fwd")
            dynamo_backward = _dynamo_compiled(eager_backward, f"{tag}_bwd")
            kernel.compiled_forward, kernel.compiled_backward = dynamo_forward, dynamo_backward
            if device.type == "cpu" and kernel_store.enabled():
                kernel.stored_forward = kernel_store.StoredFunction(
                    _as_tuple(eager_forward), (*key, "forward"), _formulas_digest(), 1, _as_tuple(dynamo_forward)
                )
                kernel.stored_backward = kernel_store.StoredFunction(
                    eager_backward, (*key, "backward"), _formulas_digest(), 2, dynamo_backward
                )
                kernel.compiled_forward = _first(kernel.stored_forward)
                kernel.compiled_backward = kernel.stored_backward
        _CACHE[key] = kernel
    return kernel


def _dynamo_compiled(fn: Callable[..., T], name: str) -> Callable[..., T]:
    """``fn`` under ``torch.compile`` with duck sizing off, set up at its first call.

    Why at the first call: ``torch.compile`` imports Dynamo's backends (0.7 s), which a process whose
    kernels all load from stored files never needs. ``dynamic=True``: one graph for every batch size;
    size-1 dims (scalar parameters) stay static. The inputs are passed detached: Dynamo's guards check
    requires_grad, so without this an inference call (inputs that need no gradient) would compile a
    second graph of the same formula.
    """
    compiled: Callable[..., T] | None = None

    def call(*args: Tensor) -> T:
        nonlocal compiled
        if compiled is None:
            compiled = _without_duck_sizing(torch.compile(fresh_function(fn, name), dynamic=True, fullgraph=True))
        return compiled(*(arg.detach() for arg in args))

    return call


def _as_tuple(forward: Forward) -> Callable[..., tuple[Tensor]]:
    return lambda *args: (forward(*args),)


def _first(stored: Callable[..., tuple[Tensor, ...]]) -> Forward:
    return lambda *args: stored(*args)[0]


@functools.cache
def _formulas_digest() -> str:
    """A hash of the source the compiled kernels come from (a stored kernel is recompiled when it changes)."""
    digest = hashlib.sha256()
    for module in (fused_kernels, sys.modules[__name__]):
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()


def _with_casts(forward: Forward, backward: Backward, work: torch.dtype) -> tuple[Forward, Backward]:
    def fused_forward(x: Tensor, *params: Tensor) -> Tensor:
        return forward(x.to(work), *(p.to(work) for p in params)).to(x.dtype)

    def fused_backward(grad: Tensor, x: Tensor, *params: Tensor) -> tuple[Tensor, ...]:
        gx, *gparams = backward(grad.to(work), x.to(work), *(p.to(work) for p in params))
        return (gx.to(x.dtype), *(g.to(p.dtype) for g, p in zip(gparams, params, strict=True)))

    return fused_forward, fused_backward


def fresh_function(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A copy of ``fn`` with its own code object (named ``name``).

    Dynamo caches compiled graphs on the code object and allows 8 per code object; every kernel shares
    the code of the ``_with_casts`` wrappers, so without a copy 8 (family, dtype, rank) combinations
    would exhaust the limit and the rest would silently run uncompiled.
    """
    assert isinstance(fn, types.FunctionType)
    code = fn.__code__.replace(co_name=name)
    copy = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name
    return copy


def _tag(family: str, dtype: torch.dtype, param_dtype: torch.dtype, number: int) -> str:
    short = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16", torch.float16: "f16"}
    return f"aaf_{family}_{short.get(dtype, 'x')}_{short.get(param_dtype, 'x')}_{number}"


def cache_info() -> dict[tuple[Hashable, ...], dict[str, int]]:
    """Call counts per cached kernel key (for tests and benchmarks)."""
    return {key: dict(kernel.calls) for key, kernel in _CACHE.items()}


def clear_cache() -> None:
    """Drop every cached kernel (the next call builds, and recompiles, again)."""
    _CACHE.clear()
