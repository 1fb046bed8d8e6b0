"""Parameter-gradient sums on CPU: the fused backward with its sums in one stage against two stages.

    python benchmarks/parameter_sums.py                     # per-channel parameters, every family that has them
    python benchmarks/parameter_sums.py --shape layer       # one parameter set per layer (full sums)

For each family, the compiled fused backward (``aaf_search.activations.fused_kernels``) runs on the four
activation shapes of the 4-conv network of ``benchmarks/activations.py`` (batch 128, channels-last
float32, as trials train), once compiled with every parameter-gradient sum in one stage and once with
the sums in two stages (first per sample, then over the batch; see ``fused_kernels.sum_to``). The two
alternate within each round; the medians of the four shapes' total time are reported, with which form
``sum_to`` takes by default for that parameter shape.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from aaf_search import activations
from aaf_search.activations import fused, fused_kernels
from aaf_search.trials.malloc import tune_malloc
from aaf_search.trials.prefault import prefault_torch

BATCH = 128
SHAPES = ((16, 32, 32), (32, 32, 32), (32, 16, 16), (64, 16, 16))  # (C, H, W) of the network's four slots

Case = tuple[Tensor, Tensor, list[Tensor]]  # upstream gradient, input, parameters broadcast to it


@contextmanager
def sum_stages(two: bool) -> Iterator[None]:
    """Make every CPU parameter-gradient sum take two stages, or one. Dynamo guards on the tables it read,
    so a kernel must be called under the setting it was compiled with."""
    saved = fused_kernels.TWO_STAGE_SUM_DEVICES, fused_kernels.TWO_STAGE_PARTIAL_SUM_DEVICES
    cpu = ("cpu",) if two else ()
    fused_kernels.TWO_STAGE_SUM_DEVICES, fused_kernels.TWO_STAGE_PARTIAL_SUM_DEVICES = cpu, cpu
    try:
        yield
    finally:
        fused_kernels.TWO_STAGE_SUM_DEVICES, fused_kernels.TWO_STAGE_PARTIAL_SUM_DEVICES = saved


def cases(family: str, shape: str) -> list[Case]:
    generator = torch.Generator().manual_seed(0)
    built = []
    for channels, height, width in SHAPES:
        module = activations.create(family, shape=shape, channels=channels)
        x = torch.randn(BATCH, channels, height, width, generator=generator).contiguous(
            memory_format=torch.channels_last
        )
        params = [p.detach() for p in module.fused_params(x)]
        built.append(
            (torch.randn(x.shape, generator=generator).contiguous(memory_format=torch.channels_last), x, params)
        )
    return built


def compiled_backward(family: str, shape: str, two: bool) -> Callable[..., tuple[Tensor, ...]]:
    options = activations.create(family, shape=shape, channels=SHAPES[0][0]).fused_options()
    _, backward = fused_kernels.KERNELS[family].build(options)
    # A code object of its own per variant: Dynamo keeps at most 8 graphs per code object.
    return torch.compile(
        fused.fresh_function(backward, f"{family}_{'two' if two else 'one'}_stage"), dynamic=True, fullgraph=True
    )


def run_all(backward: Callable[..., tuple[Tensor, ...]], built: Sequence[Case]) -> float:
    started = time.perf_counter()
    for grad, x, params in built:
        backward(grad, x, *params)
    return (time.perf_counter() - started) * 1e3


def compare(family: str, shape: str, repeats: int) -> tuple[float, float]:
    built = cases(family, shape)
    variants = {}
    for two in (False, True):
        with sum_stages(two):
            variants[two] = compiled_backward(family, shape, two)
            run_all(variants[two], built)  # compiles, once per distinct stride pattern
            run_all(variants[two], built)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for two in (False, True):
            with sum_stages(two):
                times[two].append(run_all(variants[two], built))
    return statistics.median(times[False]), statistics.median(times[True])


def default_form(shape: str) -> str:
    module = activations.create("leaf", shape=shape, channels=SHAPES[0][0])
    x = torch.empty(BATCH, *SHAPES[0])
    param_shape = module.fused_params(x)[0].shape
    dims = fused_kernels.reduced_dims(param_shape, x.ndim)
    return "two-stage" if fused_kernels.sums_in_two_stages("cpu", dims, x.ndim) else "one-stage"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=("channel", "layer"), default="channel", help="parameter shape")
    parser.add_argument("--families", nargs="+", metavar="NAME", help="default: every fused family with that shape")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds per family (default 15)")
    args = parser.parse_args()
    supported = [f for f in fused.families() if args.shape in activations.get(f).shapes]
    families = args.families or supported
    unsupported = [f for f in families if f not in supported]
    if unsupported:
        parser.error(f"no fused '{args.shape}' form for {', '.join(unsupported)}; choose from: {', '.join(supported)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    tune_malloc()
    prefault_torch()
    print(
        f"machine: {platform.machine()} ({torch.backends.cpu.get_cpu_capability()} kernels), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; shape {args.shape}, batch {BATCH}, "
        f"channels-last float32, slots {', '.join('x'.join(map(str, s)) for s in SHAPES)}"
    )
    print(f"sum_to's default for this shape on the CPU: {default_form(args.shape)}")
    print(f"{'family':<16}{'one-stage ms':>13}{'two-stage ms':>14}{'two / one':>11}")
    for family in families:
        one, two = compare(family, args.shape, args.repeats)
        print(f"{family:<16}{one:>13.2f}{two:>14.2f}{two / one:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
