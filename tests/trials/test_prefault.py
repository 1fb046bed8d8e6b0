"""Mapping PyTorch's read-only library data up front, so that masked constant loads in its math do not stall."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from aaf_search.trials import prefault

# In a fresh process (the mapping is process-wide and the test process may have it already): how much of
# libtorch_cpu's read-only data is mapped (resident in this process's page tables) before and after.
PROBE = """
import json, torch
from aaf_search.trials.prefault import prefault_torch, read_only_mappings, resident_bytes

mappings = read_only_mappings()
size = sum(mapping.size for mapping in mappings)
before = resident_bytes(mappings)
mapped = prefault_torch()
after = resident_bytes(mappings)
print(json.dumps({"size": size, "before": before, "mapped": mapped, "after": after, "again": prefault_torch()}))
"""


def _kernel_version() -> tuple[int, int]:
    major, minor, *_ = (platform.release().split("-")[0] + ".0.0").split(".")
    return int(major), int(minor)


linux_only = pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc and calls madvise: Linux")
populating_linux = pytest.mark.skipif(
    platform.system() != "Linux" or _kernel_version() < (5, 14), reason="MADV_POPULATE_READ: Linux 5.14 or later"
)


def _probe(env_value: str | None) -> dict[str, int]:
    env = {key: value for key, value in os.environ.items() if key != prefault.ENV_PREFAULT}
    if env_value is not None:
        env[prefault.ENV_PREFAULT] = env_value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@populating_linux
def test_prefault_maps_every_page_of_the_library_read_only_data() -> None:
    result = _probe(None)
    size = result["size"]
    assert size > 1 << 20  # libtorch_cpu's constants, symbol tables and exception tables
    assert result["before"] < size  # a fresh process maps a library's pages as it touches them
    assert result["mapped"] == result["after"] == size
    assert result["again"] == size  # once per process: the second call reports the first call's work


@linux_only
def test_the_environment_variable_turns_prefaulting_off() -> None:
    result = _probe("0")
    assert result["mapped"] == 0
    assert result["after"] < result["size"]


def test_read_only_mappings_keeps_the_named_library_s_read_only_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maps = tmp_path / "maps"
    maps.write_text(
        "7f0000000000-7f0000001000 r--p 00000000 fe:00 11 /lib/libtorch_cpu.so\n"
        "7f0000001000-7f0000005000 r-xp 00001000 fe:00 11 /lib/libtorch_cpu.so\n"
        "7f0000005000-7f0000007000 r--p 00005000 fe:00 11 /lib/libtorch_cpu.so\n"
        "7f0000007000-7f0000008000 rw-p 00007000 fe:00 11 /lib/libtorch_cpu.so\n"
        "7f0000008000-7f0000009000 r--p 00000000 fe:00 12 /lib/libtorch_cuda.so\n"
        "7f000000a000-7f000000b000 rw-p 00000000 00:00 0 \n"
    )
    monkeypatch.setattr(prefault, "PROC_MAPS", maps)
    found = prefault.read_only_mappings()
    assert [(m.start, m.size) for m in found] == [(0x7F0000000000, 0x1000), (0x7F0000005000, 0x2000)]
    assert {m.path for m in found} == {"/lib/libtorch_cpu.so"}
