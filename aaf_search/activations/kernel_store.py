"""Compiled fused kernels kept as files, so that a process loads in milliseconds what an earlier one compiled.

Why: under ``torch.compile`` a kernel that Inductor's on-disk cache already held still cost every new
process 0.4-3.8 s before its first call (``benchmarks/compile_cost.py``), most of it Dynamo tracing the
Python formulas again and building guards. The fused formulas are straight-line tensor code, so here a
kernel is traced once with ``make_fx``, compiled with Inductor's ``standalone_compile`` and saved as one
file; a later process (a new trial's worker, a ``train`` run) loads the file and calls the compiled code
directly, with no Dynamo and no guards.

Without guards the caller has to pass what the code was compiled for. So each compiled function is
specialised to a :data:`Signature`, computed per call (a few microseconds): every input's dtype; for the
inputs with dynamic sizes (the activation's input and its incoming gradient) their memory layout
(contiguous or channels-last; an input in any other layout is copied to contiguous) and which dims are
0 or 1; for the rest (the parameters) their exact shape and strides. The other dims stay symbolic, so
one compilation serves every batch size and every layer of that layout. Inductor's generated code also
checks sizes and strides on entry, so a call that breaks the contract fails loudly instead of reading
the wrong memory.

Files live in ``$AAF_KERNEL_CACHE_DIR``, by default ``aaf_kernels`` inside Inductor's cache directory
(``TORCHINDUCTOR_CACHE_DIR``, whose compiled objects the files refer to). A file's name hashes everything
its code depends on: the kernel's key and signature, the formulas' source, the torch version and the
CPU's vector instructions. Each file is written under a temporary name and renamed into place, so
concurrent workers never read half a file, and an unreadable file is compiled and written again.
Loading a file marks it used (its modification time); storing a new one deletes the files no process
has loaded for :data:`UNUSED_DAYS` days, such as those of an earlier torch version or earlier formulas,
which no later process would read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import re
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aaf_search.atomic import write_atomically
from aaf_search.envflags import switched_on

ENV_STORE = "AAF_KERNEL_STORE"
ENV_DIRECTORY = "AAF_KERNEL_CACHE_DIR"
FORMAT = 1  # bump when the way files are traced or named changes
SUFFIX = ".pt2"
STORED_NAME = re.compile(r"[0-9a-f]{32}\.pt2")  # what file_name() writes
UNUSED_DAYS = 30

InputSignature = tuple[Hashable, ...]
Signature = tuple[InputSignature, ...]

log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether CPU kernels are compiled into stored files (``AAF_KERNEL_STORE=0``: Dynamo instead)."""
    return switched_on(ENV_STORE)


def directory() -> Path:
    """Where compiled kernels are stored: ``$AAF_KERNEL_CACHE_DIR``, else inside Inductor's cache."""
    configured = os.environ.get(ENV_DIRECTORY, "").strip()
    if configured:
        return Path(configured)
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return Path(cache_dir()) / "aaf_kernels"


def _layout(t: Tensor) -> str | None:
    """The dense memory layouts a compiled function is specialised to; ``None`` for any other tensor."""
    if t.is_contiguous():
        return "contiguous"
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d):
        return "channels_last_3d"
    return None


def prepare(args: Sequence[Tensor], dynamic: int) -> tuple[Signature, list[Tensor]]:
    """What a compiled function for ``args`` is specialised to, and the inputs to call it with.

    The first ``dynamic`` inputs have symbolic sizes; one that is neither contiguous nor channels-last (a
    transposed view, a slice, the expanded gradient of a ``sum()``) is passed as a contiguous copy, so
    that every call has a compiled function of one of a few layouts.
    """
    parts: list[InputSignature] = []
    inputs: list[Tensor] = []
    for index, t in enumerate(args):
        # Detached: a parameter saved for backward requires grad, and the compiled code has no autograd.
        t = t.detach()
        if index < dynamic:
            layout = _layout(t)
            if layout is None:
                t, layout = t.contiguous(), "contiguous"
            # Sizes 0 and 1 are specialised by the tracer (as by Dynamo); every other size is one symbol.
            parts.append((t.dtype, layout, tuple(min(size, 2) for size in t.shape)))
        else:
            parts.append((t.dtype, tuple(t.shape), t.stride()))
        inputs.append(t)
    return tuple(parts), inputs


def _machine() -> str:
    return f"{platform.machine()}-{torch.backends.cpu.get_cpu_capability()}"


def file_name(key: Hashable, source_digest: str, sig: Signature) -> str:
    """The file of one compiled function: a hash of everything its code depends on."""
    text = repr((FORMAT, torch.__version__, _machine(), source_digest, key, sig))
    return hashlib.sha256(text.encode()).hexdigest()[:32] + SUFFIX


def trace(fn: Callable[..., Any], example: Sequence[Tensor], dynamic: int) -> torch.fx.GraphModule:
    """``fn`` as an ATen graph, the sizes of the first ``dynamic`` inputs symbolic, the others fixed.

    Each symbolic size gets its own symbol (no duck sizing: equal sizes in the example, such as a
    32 x 32 x 32 activation, are not assumed equal later).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

    mode = FakeTensorMode(shape_env=ShapeEnv(duck_shape=False))
    fakes = []
    for index, t in enumerate(example):
        if index < dynamic:
            sizes = [DimDynamic.DYNAMIC if size > 1 else DimDynamic.STATIC for size in t.shape]
            context: StatelessSymbolicContext[Any, Any] = StatelessSymbolicContext(
                dynamic_sizes=sizes, constraint_sizes=[None] * t.dim()
            )
            fakes.append(mode.from_tensor(t, symbolic_context=context))
        else:
            fakes.append(mode.from_tensor(t, static_shapes=True))

    def unannotated(*args: Any) -> Any:
        # FX copies the traced function's annotations into the graph's code; postponed ones (strings)
        # then break the compiled graph's cache key, and with it saving the file.
        return fn(*args)

    unannotated.__annotations__ = {}
    return make_fx(unannotated, tracing_mode="fake")(*fakes)


@dataclass
class StoreStats:
    """What a :class:`StoredFunction` did: compilations, loads from files, calls it left to its fallback."""

    compiled: int = 0
    loaded: int = 0
    fallback_calls: int = 0


@dataclass
class StoredFunction:
    """``fn`` compiled once per :data:`Signature`: from this process's table, else a stored file, else compiled.

    ``fn`` returns a tuple of tensors. The first ``dynamic`` inputs have symbolic sizes. ``fallback``
    serves every call once this path has failed (with a warning), for instance where the tracer does
    not support an operation.
    """

    fn: Callable[..., tuple[Tensor, ...]]
    key: Hashable
    source_digest: str
    dynamic: int
    fallback: Callable[..., tuple[Tensor, ...]]
    stats: StoreStats = field(default_factory=StoreStats)
    _compiled: dict[Signature, Callable[..., Sequence[Tensor]]] = field(default_factory=dict)
    _failed: bool = False

    def __call__(self, *args: Tensor) -> tuple[Tensor, ...]:
        if self._failed:
            self.stats.fallback_calls += 1
            return self.fallback(*args)
        sig, inputs = prepare(args, self.dynamic)
        compiled = self._compiled.get(sig)
        if compiled is None:
            try:
                compiled = self._load_or_compile(sig, inputs)
            except Exception as exc:  # tracing and compiling fail in many exception types
                reason = next(iter(str(exc).splitlines()), "")  # the tracer's messages run to pages
                warnings.warn(
                    f"aaf_search: compiling the fused kernel {self.key} into a stored file failed "
                    f"({type(exc).__name__}: {reason}); compiling it with torch.compile instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._failed = True
                return self(*args)
            self._compiled[sig] = compiled
        return tuple(compiled(*inputs))

    def _load_or_compile(self, sig: Signature, inputs: list[Tensor]) -> Callable[..., Sequence[Tensor]]:
        from torch._inductor import CompiledArtifact, standalone_compile

        path = directory() / file_name(self.key, self.source_digest, sig)
        if path.exists():
            try:
                loaded = CompiledArtifact.load(path=str(path), format="binary")
            except Exception as exc:  # a file from another torch build, or cut short: compile it again
                log.info("compiling %s again: its stored file %s did not load (%s)", self.key, path, exc)
            else:
                self.stats.loaded += 1
                _mark_used(path)
                return loaded
        example: list[Any] = list(inputs)
        artifact = standalone_compile(trace(self.fn, example, self.dynamic), example, dynamic_shapes="from_graph")
        self.stats.compiled += 1
        try:
            _save(artifact, path)
        except OSError as exc:  # a full or read-only disk: this process keeps the compiled code all the same
            log.warning("could not store the compiled kernel %s in %s: %s", self.key, path, exc)
        else:
            evict_unused(path.parent, days=UNUSED_DAYS)
        return artifact


def _save(artifact: Any, path: Path) -> None:
    """Write ``artifact`` to ``path`` whole or not at all (a concurrent reader never sees part of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: artifact.save(path=str(temporary), format="binary"))


def _mark_used(path: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only store still loads; its files just age
        os.utime(path)


def evict_unused(folder: Path, *, days: float) -> list[Path]:
    """Delete the stored kernels in ``folder`` that no process has loaded or written for ``days`` days.

    Only files named as :func:`file_name` names them are candidates: ``$AAF_KERNEL_CACHE_DIR`` may point
    into a folder that holds other ``.pt2`` files (``torch.export`` writes them too). A process loading
    one of them at that moment finds it gone or unreadable and compiles it again.
    """
    oldest = time.time() - days * 86400
    removed = []
    for path in folder.glob(f"*{SUFFIX}"):
        if not STORED_NAME.fullmatch(path.name):
            continue
        try:
            if path.stat().st_mtime < oldest:
                path.unlink()
                removed.append(path)
        except OSError:  # deleted by another process meanwhile, or not ours to delete
            continue
    if removed:
        log.info("deleted %d stored kernels unused for %g days from %s", len(removed), days, folder)
    return removed
