"""From how many input elements the fused path of each family beats its eager reference (forward + backward).

A fused call costs a fixed few hundred microseconds more than an eager one (the compiled function's
guards and wrappers) and less per element; on small activations (a digits MLP's 64 x 200) eager is the
faster. For every family with a fused kernel, this times one forward and backward of the module on
inputs of 2^12 to 2^20 elements, both ways, interleaved, and prints the smallest size from which fused
stays faster: the thresholds ``fused.AUTO_FUSED`` holds for "auto".

    python benchmarks/fused_crossover.py [--families coslu apa ...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from aaf_search import activations
from aaf_search.activations import fused
from aaf_search.trials.malloc import tune_malloc

SIZES = tuple(2**k for k in range(12, 21))
ROW = 64  # elements per row: the inputs are (n / 64, 64), an MLP's (batch, features)


def step_microseconds(family: str, impl: str, elements: int, repeats: int) -> float:
    """Fastest of ``repeats`` timings of one forward + backward of ``family`` on ``elements`` inputs."""
    fused.set_implementation(impl)  # type: ignore[arg-type]
    module = activations.create(family)
    x = torch.randn(elements // ROW, ROW, requires_grad=True)
    grad = torch.ones(elements // ROW, ROW)

    def step() -> None:
        module(x).backward(grad)

    for _ in range(3):
        step()  # compiles on the first fused call of a family
    calls = max(3, 2_000_000 // elements)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def crossover(times: dict[int, tuple[float, float]]) -> int | None:
    """The smallest size from which fused is faster at every larger size measured; None if never."""
    result = None
    for size in sorted(times, reverse=True):
        eager, fused_time = times[size]
        if fused_time >= eager:
            break
        result = size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=sorted(set(fused.families()) - {"lslu"}))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    unknown = sorted(set(args.families) - set(fused.families()))
    if unknown:
        parser.error(f"no fused kernel for {', '.join(unknown)}; choose from: {', '.join(fused.families())}")
    tune_malloc()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'family':<16}" + "".join(f"{size:>10}" for size in SIZES) + "   fused from")
    for family in args.families:
        times = {}
        for size in SIZES:
            eager = step_microseconds(family, "eager", size, args.repeats)
            fused_time = step_microseconds(family, "fused", size, args.repeats)
            times[size] = (eager, fused_time)
        ratios = "".join(f"{times[size][1] / times[size][0]:>10.2f}" for size in SIZES)
        print(f"{family:<16}{ratios}   {crossover(times) or 'never'}")
    print("(fused time / eager time per forward + backward; < 1: fused is faster)")


if __name__ == "__main__":
    main()
