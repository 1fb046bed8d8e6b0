"""Keep freed memory in the process heap (glibc), so that CPU training steps stop faulting pages in.

Why: glibc's malloc serves every block above its mmap threshold (dynamic, at most 32 MiB) with a fresh
``mmap`` and unmaps it on ``free``. A CPU training step allocates and frees activations and gradients of
several MiB each, so every step maps them anew and the kernel zero-fills each page on first touch. On the
2-core development machine the 4-conv network of ``benchmarks/activations.py`` took about 24,700 page
faults per step (30 with this module's settings) and its SiLU step went from 130 to 107 ms. PyTorch's CPU
tuning guide reaches the same end by preloading jemalloc or tcmalloc; here two ``mallopt`` calls do it
with the C library already loaded.

The cost: the process keeps the peak of its heap instead of returning freed memory to the system (up to
:data:`TRIM_THRESHOLD` above the peak's live data), which is what a process that trains one model after
another wants. ``AAF_MALLOC_TUNING=0`` leaves malloc at its defaults.
"""

from __future__ import annotations

import ctypes
import platform

from aaf_search.envflags import switched_on

ENV_MALLOC_TUNING = "AAF_MALLOC_TUNING"
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap, so their pages are reused
TRIM_THRESHOLD = (1 << 31) - 1  # free memory at the heap top kept before trimming; mallopt takes a C int

_applied: bool | None = None  # None: not tried yet in this process


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once; whether the settings are in effect.

    Does nothing (returns False) off glibc, or when ``AAF_MALLOC_TUNING`` is ``0``/``false``/``no``/``off``.
    """
    global _applied
    if _applied is None:
        _applied = _wanted() and _apply()
    return _applied


def _wanted() -> bool:
    if not switched_on(ENV_MALLOC_TUNING):
        return False
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _apply() -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting the mmap threshold also stops glibc from adjusting it.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
