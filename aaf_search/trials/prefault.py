"""Map PyTorch's read-only library data into the process up front, so that its vectorised math runs at full speed.

Why: PyTorch's vectorised CPU math (SLEEF, linked into ``libtorch_cpu``) treats special inputs of
``log1p`` and ``expm1`` with AVX-512 masked loads of constants from the library's read-only data. For
ordinary inputs the mask is empty and the load reads nothing, but while the constant's page is not mapped
into the process the processor (an AMD EPYC here) takes a slow path on every such load (``perf annotate``
puts 80 % of ``log1p``'s time on the instruction after it), and since no load ever reads the page,
nothing maps it. Linux maps a library's pages on first touch, so whether the page was mapped depended on
what the process had run before (a single ``torch.pow`` maps it): the same trial ran at different speeds
in different workers, and a worker that ran only APA trials never left the slow path. On the 2-core
development machine, page unmapped against mapped (``benchmarks/prefault.py``, 4M elements):
``torch.log1p`` 17.1x slower, ``expm1`` 6.5x, ``F.softplus`` 5.0x, ``F.elu`` 6.5x; the APA network of
``benchmarks/activations.py`` stepped at 2.64x SiLU's time instead of 1.39x.

One ``madvise(MADV_POPULATE_READ)`` per read-only data mapping of the library (about 61 MiB of file pages
that every process using the library shares, ~20 ms when they are in the page cache) maps them all; it
reads, it never writes. Each process's resident size counts those pages (a Ray worker's too), the
machine holds them once. Linux 5.14 or later; elsewhere nothing happens. ``AAF_PREFAULT=0`` skips it.
"""

from __future__ import annotations

import ctypes
import platform
from dataclasses import dataclass
from pathlib import Path

from aaf_search.envflags import switched_on

ENV_PREFAULT = "AAF_PREFAULT"
LIBRARY_PREFIX = "libtorch_cpu"  # the shared library that holds ATen's CPU kernels and SLEEF
MADV_PAGEOUT = 21  # linux/mman.h, since Linux 5.4: reclaim; benchmarks/prefault.py unmaps with it
MADV_POPULATE_READ = 22  # linux/mman.h, since Linux 5.14
PROC_MAPS = Path("/proc/self/maps")
PROC_SMAPS = Path("/proc/self/smaps")

_mapped: int | None = None  # None: not tried yet in this process


@dataclass(frozen=True)
class Mapping:
    """One address range of a file mapped into this process (a line of ``/proc/self/maps``)."""

    start: int
    end: int
    permissions: str  # e.g. "r--p"
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start


def read_only_mappings(prefix: str = LIBRARY_PREFIX) -> list[Mapping]:
    """The read-only (not writable, not executable) mappings of the loaded library named ``prefix``*."""
    mappings = []
    for line in PROC_MAPS.read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not Path(fields[5]).name.startswith(prefix):
            continue
        start, end = (int(bound, 16) for bound in fields[0].split("-"))
        mapping = Mapping(start, end, fields[1], fields[5])
        if mapping.permissions.startswith("r--"):
            mappings.append(mapping)
    return mappings


def resident_bytes(mappings: list[Mapping]) -> int:
    """How many bytes of ``mappings`` are mapped into this process's page tables now (``/proc/self/smaps``'s Rss)."""
    starts = {mapping.start for mapping in mappings}
    resident = 0
    current: int | None = None
    for line in PROC_SMAPS.read_text().splitlines():
        first = line.split(maxsplit=1)[0]
        if not first.endswith(":"):  # a mapping's header line: "start-end perms offset dev inode path"
            current = int(first.split("-")[0], 16)
        elif first == "Rss:" and current in starts:
            resident += int(line.split()[1]) * 1024  # in kB
    return resident


def prefault_torch() -> int:
    """Map every page of ``libtorch_cpu``'s read-only data into this process, once; the bytes mapped.

    0 when switched off (``AAF_PREFAULT=0``), off Linux, on a kernel without ``MADV_POPULATE_READ``, or
    when the library is not loaded (import torch first).
    """
    global _mapped
    if _mapped is None:
        _mapped = populate(read_only_mappings()) if _wanted() else 0
    return _mapped


def populate(mappings: list[Mapping]) -> int:
    """Fault the pages of ``mappings`` in for reading; the bytes mapped."""
    return advise(mappings, MADV_POPULATE_READ)


def advise(mappings: list[Mapping], advice: int) -> int:
    """``madvise(advice)`` over each of ``mappings``; the bytes advised, stopping at the first refusal."""
    try:
        madvise = ctypes.CDLL(None).madvise  # the C library's, whichever it is (glibc, musl)
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    done = 0
    for mapping in mappings:
        if madvise(mapping.start, mapping.size, advice) != 0:
            break  # EINVAL: a kernel without this advice (POPULATE_READ: before 5.14); pages then map on first touch
        done += mapping.size
    return done


def _wanted() -> bool:
    return switched_on(ENV_PREFAULT) and platform.system() == "Linux" and PROC_MAPS.exists()
