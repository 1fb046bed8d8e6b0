"""PyTorch's CPU math with libtorch_cpu's read-only data unmapped and mapped (``aaf_search.trials.prefault``).

    python benchmarks/prefault.py [--repeats 7] [--elements 4194304]

Each round first unmaps the library's read-only data from this process (``madvise(MADV_PAGEOUT)``: the
kernel reclaims the pages; it never discards data) and times every workload, as a process that has not
touched those pages runs; then maps them all (``prefault.populate``, as every trial does) and times them
again. Workloads: element-wise float32 operations on a tensor of ``--elements`` (default: the largest
activation of the 4-conv network of ``benchmarks/activations.py``, 128x32x32x32), and the fused APA and
AGLU activations' forward and backward on that shape. Medians over the rounds; ``unmapped / mapped``
above 1 is what mapping up front saves.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from aaf_search import activations
from aaf_search.activations import fused
from aaf_search.trials import prefault
from aaf_search.trials.malloc import tune_malloc

CALLS = 5  # calls per timing


def workloads(elements: int) -> dict[str, Callable[[], object]]:
    x = torch.randn(elements)
    positive = x.abs()
    image = torch.randn(elements // (32 * 32 * 32), 32, 32, 32).contiguous(memory_format=torch.channels_last)
    image.requires_grad_(True)
    grad = torch.randn_like(image)
    steps: dict[str, Callable[[], object]] = {
        "torch.log1p": lambda: torch.log1p(positive),
        "torch.expm1": lambda: torch.expm1(x),
        "F.softplus": lambda: F.softplus(x),
        "F.elu": lambda: F.elu(x),
        "torch.exp": lambda: torch.exp(x),
        "torch.sin": lambda: torch.sin(x),
    }
    for family in ("apa", "aglu"):
        module = activations.create(family, shape="layer", channels=32)
        steps[f"{family} fused fwd+bwd"] = lambda module=module: torch.autograd.grad(module(image), image, grad)
    return steps


def milliseconds(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        step()
    return (time.perf_counter() - started) / CALLS * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="rounds of unmapped and mapped timings (default 7)")
    parser.add_argument("--elements", type=int, default=128 * 32 * 32 * 32, help="elements per tensor (default 4M)")
    args = parser.parse_args()
    if args.repeats < 1 or args.elements < 32 * 32 * 32:
        parser.error(f"--repeats must be at least 1 and --elements at least {32 * 32 * 32}")
    mappings = prefault.read_only_mappings()
    if platform.system() != "Linux" or not mappings:
        print("needs Linux and a loaded libtorch_cpu: nothing to compare here", file=sys.stderr)
        return 1
    tune_malloc()
    torch.manual_seed(0)
    fused.set_implementation("fused")
    steps = workloads(args.elements)
    for step in steps.values():
        step()  # compiles the fused kernels before any timing
    size = sum(mapping.size for mapping in mappings)
    print(
        f"machine: {platform.machine()} ({torch.backends.cpu.get_cpu_capability()} kernels), "
        f"{torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; {args.elements} float32 elements; read-only data of "
        f"{mappings[0].path} {size / 2**20:.1f} MiB"
    )
    times: dict[str, dict[str, list[float]]] = {name: {"unmapped": [], "mapped": []} for name in steps}
    resident: dict[str, list[int]] = {"unmapped": [], "mapped": []}
    for round_ in range(args.repeats):
        for state in ("unmapped", "mapped"):
            if state == "unmapped":
                prefault.advise(mappings, prefault.MADV_PAGEOUT)
            else:
                prefault.populate(mappings)
            resident[state].append(prefault.resident_bytes(mappings))
            for name, step in steps.items():
                times[name][state].append(milliseconds(step))
        print(f"  round {round_ + 1}/{args.repeats} done", file=sys.stderr)
    print(
        f"resident before the timings, medians: unmapped {statistics.median(resident['unmapped']) / 2**20:.1f} MiB, "
        f"mapped {statistics.median(resident['mapped']) / 2**20:.1f} MiB (the timed calls map what they touch)"
    )
    if statistics.median(resident["unmapped"]) > size / 2:
        # Linux reclaims a file page only for a process that may write the file (or owns it)
        print("the pages could not be unmapped here (no write access to the library?): both columns ran mapped")
    print(f"{'workload':<22} {'unmapped ms':>12} {'mapped ms':>10} {'unmapped / mapped':>18}")
    for name, by_state in times.items():
        unmapped, mapped = statistics.median(by_state["unmapped"]), statistics.median(by_state["mapped"])
        print(f"{name:<22} {unmapped:>12.2f} {mapped:>10.2f} {unmapped / mapped:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
