"""The malloc settings that stop a training step from faulting its freed memory back in."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

# In a fresh process (the settings are process-wide and the test process may have them already): page
# faults per cycle of allocating, filling and freeing a 64 MiB tensor, before and after tune_malloc(). The
# first tuned cycles still grow the heap (an aligned block needs a hole a little larger than itself), so
# each measurement follows a dozen warm-up cycles, as a training loop's steps would.
PROBE = """
import json, resource, torch
from aaf_search.trials.malloc import tune_malloc

def faults_per_cycle():
    for _ in range(12):
        torch.empty(16 << 20).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.empty(16 << 20).fill_(1.0)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10

default = faults_per_cycle()
applied = tune_malloc()
print(json.dumps({"default": default, "applied": applied, "tuned": faults_per_cycle(), "again": tune_malloc()}))
"""


def _probe(env_value: str | None) -> dict[str, float]:
    env = {key: value for key, value in os.environ.items() if key != "AAF_MALLOC_TUNING"}
    if env_value is not None:
        env["AAF_MALLOC_TUNING"] = env_value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_tuned_malloc_reuses_freed_blocks_instead_of_faulting_them_in() -> None:
    result = _probe(None)
    pages = (64 << 20) // 4096
    # By default glibc maps a 64 MiB block afresh every time: its pages fault in on first touch.
    assert result["default"] > pages / 16
    assert result["applied"] and result["again"]
    assert result["tuned"] < pages / 100


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_the_environment_variable_turns_the_tuning_off() -> None:
    result = _probe("0")
    assert not result["applied"]
    assert result["tuned"] > (64 << 20) // 4096 / 16
