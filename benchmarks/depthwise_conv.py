"""LSLU's depthwise convolution on CPU: oneDNN's weight gradient against the split one, and the whole module.

    python benchmarks/depthwise_conv.py [--repeats 7] [--batch 128]

For each LSLU kernel size (5x5, 7x7, 9x9: n = 2, 3, 4) and each activation shape of the 4-conv network of
``benchmarks/activations.py`` (plus two small ones, where the split does not pay), times the weight
gradient of the depthwise convolution computed by oneDNN (``aten.convolution_backward``) and by
``aaf_search.activations.depthwise.weight_gradient``; then one forward and backward of an LSLU module
with the split switched off (by raising its size threshold) and on. Channels-last float32 inputs, as in
trials; the two ways alternate within each round and the medians are reported.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from aaf_search import activations
from aaf_search.activations import depthwise
from aaf_search.trials.malloc import tune_malloc
from aaf_search.trials.prefault import prefault_torch

SHAPES = ((16, 32, 32), (32, 32, 32), (32, 16, 16), (64, 16, 16), (16, 16, 16), (32, 8, 8), (16, 8, 8))  # (C, H, W)
SERIES_LENGTHS = (2, 3, 4)  # LSLU's n: kernels 5x5, 7x7, 9x9


def milliseconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e3


def compare(baseline: Callable[[], object], candidate: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Medians of ``repeats`` interleaved timings of each, after one warm-up call each."""
    baseline(), candidate()
    pairs = [(milliseconds(baseline), milliseconds(candidate)) for _ in range(repeats)]
    return statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)


def weight_gradients(batch: int, n: int, shape: tuple[int, int, int], repeats: int) -> tuple[float, float]:
    channels = shape[0]
    x = torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(x)
    weight = torch.randn(channels, 1, 2 * n + 1, 2 * n + 1)

    def onednn() -> object:
        return torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [n, n], [1, 1], False, [0, 0], channels, [False, True, False]
        )

    return compare(onednn, lambda: depthwise.weight_gradient(grad, x, weight.shape), repeats)


def module_steps(batch: int, n: int, shape: tuple[int, int, int], repeats: int) -> tuple[float, float]:
    module = activations.create("lslu", channels=shape[0], n=n)
    x = torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    grad = torch.randn_like(x)
    threshold = depthwise.SPLIT_MIN_ELEMENTS

    def step(split: bool) -> None:
        depthwise.SPLIT_MIN_ELEMENTS = threshold if split else x.numel() + 1
        module(x).backward(grad)

    try:
        return compare(lambda: step(False), lambda: step(True), repeats)
    finally:
        depthwise.SPLIT_MIN_ELEMENTS = threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timings per configuration (default 7)")
    parser.add_argument("--batch", type=int, default=128, help="images per batch (default 128)")
    args = parser.parse_args()
    if args.repeats < 1 or args.batch < 1:
        parser.error("--repeats and --batch must be at least 1")
    tune_malloc()
    prefault_torch()
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()} ({torch.backends.cpu.get_cpu_capability()} kernels), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"oneDNN {'on' if torch.backends.mkldnn.is_available() else 'unavailable'}; float32, channels-last, "
        f"batch {args.batch}; split used from {depthwise.SPLIT_MIN_ELEMENTS} input elements"
    )
    print("kernel  input C x H x W  elements | weight gradient: oneDNN   split  ratio", end="")
    print(" | LSLU fwd+bwd: oneDNN   split  ratio")
    for n in SERIES_LENGTHS:
        for shape in SHAPES:
            onednn, split = weight_gradients(args.batch, n, shape, args.repeats)
            plain_step, split_step = module_steps(args.batch, n, shape, args.repeats)
            kernel = torch.empty(shape[0], 1, 2 * n + 1, 2 * n + 1, requires_grad=True)
            used = depthwise.uses_split_gradient(torch.empty(args.batch, *shape), kernel)
            size = f"{2 * n + 1}x{2 * n + 1}"
            elements = args.batch * shape[0] * shape[1] * shape[2]
            print(
                f"{size:<7}{' x '.join(map(str, shape)):>15} {elements:>9} | "
                f"{onednn:>20.2f} ms {split:>4.2f} ms {split / onednn:>6.2f} | "
                f"{plain_step:>17.2f} ms {split_step:>5.2f} ms {split_step / plain_step:>6.2f}"
                + ("" if used else "  (split not used)"),
                flush=True,
            )
    print("ratio: split / oneDNN (below 1: the split is faster); the module's 'split' step uses it only where marked")


if __name__ == "__main__":
    main()
