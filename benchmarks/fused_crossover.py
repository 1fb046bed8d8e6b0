"""From how many input elements the fused path of each family beats its eager reference (training or inference).

A fused call costs a fixed amount more than an eager one (the compiled function's wrappers: about 130
microseconds on the CPU, tens on a GPU) and less per element; on small activations (a digits MLP's
64 x 200) eager is the faster. For every family with a fused kernel, this times one forward and backward
of the module on inputs of 2^12 to 2^20 elements (to 2^24 on CUDA; (N, 64), and for LSLU, a conv-net
block, (N, 16, 16, 16) channels-last), both ways, interleaved, and prints the smallest size from which
fused stays faster: the thresholds ``fused.AUTO_FUSED`` (training) and ``fused.AUTO_FUSED_INFERENCE``
(``--inference``) hold for "auto" on that device type.

    python benchmarks/fused_crossover.py [--families coslu apa ...] [--repeats 5]
    python benchmarks/fused_crossover.py --device cuda      # bf16 inputs, as under bf16 autocast
    python benchmarks/fused_crossover.py --inference        # one forward without gradients, as in validation

On CUDA the inputs are bf16 by default (under autocast the activation receives the conv's bf16 output)
and the parameters stay fp32, as in a trial. ``--inference`` times a forward under ``torch.no_grad`` (a
validation pass) instead.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch

from aaf_search import activations
from aaf_search.activations import fused
from aaf_search.trials.malloc import tune_malloc
from aaf_search.trials.prefault import prefault_torch

ROW = 64  # elements per row: the inputs are (n / 64, 64), an MLP's (batch, features)
LSLU_IMAGE = (16, 16, 16)  # LSLU's inputs are (n / 4096, 16, 16, 16) channels-last images
LARGEST = {"cpu": 20, "cuda": 24}  # log2 of the largest input size per device type
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ELEMENTS_PER_TIMING = 2_000_000  # calls per timing: this many elements in all, at least MIN_CALLS
MIN_CALLS = 3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_microseconds(
    family: str, impl: str, elements: int, repeats: int, device: torch.device, dtype: torch.dtype, inference: bool
) -> float:
    """Fastest of ``repeats`` timings of one forward + backward (or no-grad forward) of ``family``."""
    fused.set_implementation(impl)  # type: ignore[arg-type]
    if family == "lslu":  # a conv-net block: its input is an image batch
        module = activations.create(family, channels=LSLU_IMAGE[0]).to(device)
        shape = (elements // math.prod(LSLU_IMAGE), *LSLU_IMAGE)
    else:
        module = activations.create(family).to(device)  # parameters stay fp32, as under autocast
        shape = (elements // ROW, ROW)
    layout = torch.channels_last if len(shape) == 4 else torch.contiguous_format
    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=layout).requires_grad_(True)
    grad = torch.ones(shape, device=device, dtype=dtype).contiguous(memory_format=layout)

    def step() -> None:
        if inference:
            with torch.no_grad():
                module(x)
        else:
            module(x).backward(grad)

    for _ in range(3):
        step()  # compiles on the first fused call of a family
    calls = max(MIN_CALLS, ELEMENTS_PER_TIMING // elements)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        for _ in range(calls):
            step()
        sync(device)
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def power(size: int) -> str:
    return f"2^{size.bit_length() - 1}"


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
    parser.add_argument("--families", nargs="*", default=fused.families())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=tuple(LARGEST), default="cpu")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default=None, help="input dtype (default: float32 on cpu, bfloat16 on cuda)"
    )
    parser.add_argument("--inference", action="store_true", help="time a forward without gradients instead")
    args = parser.parse_args()
    unknown = sorted(set(args.families) - set(fused.families()))
    if unknown:
        parser.error(f"no fused kernel for {', '.join(unknown)}; choose from: {', '.join(fused.families())}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available; choose --device cpu")
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or ("bfloat16" if device.type == "cuda" else "float32")]
    sizes = tuple(2**k for k in range(12, LARGEST[device.type] + 1))
    tune_malloc()
    prefault_torch()  # as trials run: see aaf_search.trials.prefault
    kernels = torch.backends.cpu.get_cpu_capability()
    where = f"{platform.machine()} ({kernels} kernels), {torch.get_num_threads()} threads"
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    print(f"machine: {where}, torch {torch.__version__}, {device.type} {str(dtype).removeprefix('torch.')} inputs")
    print(f"{'family':<16}" + "".join(f"{power(size):>7}" for size in sizes) + "   fused from")
    for family in args.families:
        times = {}
        for size in sizes:
            eager = step_microseconds(family, "eager", size, args.repeats, device, dtype, args.inference)
            fused_time = step_microseconds(family, "fused", size, args.repeats, device, dtype, args.inference)
            times[size] = (eager, fused_time)
        ratios = "".join(f"{times[size][1] / times[size][0]:>7.2f}" for size in sizes)
        start = crossover(times)
        print(f"{family:<16}{ratios}   {'never' if start is None else power(start)}", flush=True)
    what = "no-grad forward" if args.inference else "forward + backward"
    print(f"(fused time / eager time per {what}; < 1: fused is faster)")


if __name__ == "__main__":
    main()
