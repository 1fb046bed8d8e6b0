"""How much of a training epoch is spent outside forward, backward and the optimiser step.

Runs a few epochs through the real training loop (``aaf_search.trials.loop.fit``: batch slicing, shuffling,
augmentation, validation, parameter summaries, finiteness checks) and, interleaved with it, the same
number of bare forward/backward/step calls on pre-sliced batches, with the same (fused) Adam. The
difference is the loop's own cost; the target is under 5 % of the epoch. A third, interleaved loop uses
torch's default Adam, as a bare loop written the obvious way would.

    python benchmarks/epoch_overhead.py [--model dnn3] [--dataset digits] [--repeats 21]
    python benchmarks/epoch_overhead.py --device cuda --precision bf16   # data resident on the GPU
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from aaf_search.config import DataConfig, OptimConfig
from aaf_search.trials.data import DataSplits, load_data
from aaf_search.trials.loop import FitSettings, autocast_context, fit
from aaf_search.trials.malloc import tune_malloc
from aaf_search.trials.models import build_model, model_info
from aaf_search.trials.plan import apply_plan, uniform_plan
from aaf_search.trials.prefault import prefault_torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_epochs(model: torch.nn.Module, data: DataSplits, settings: FitSettings, *, fused: bool) -> float:
    """Seconds for forward/backward/step over pre-sliced training batches plus the validation forward
    pass, with none of the loop's machinery; ``fused``: the fused Adam that ``fit`` uses, else torch's
    default (foreach) Adam."""
    device, batch_size = data.train_x.device, settings.batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
    batches = [
        (data.train_x[i : i + batch_size], data.train_y[i : i + batch_size])
        for i in range(0, len(data.train_x), batch_size)
    ]
    sync(device)
    started = time.perf_counter()
    for _ in range(settings.epochs):
        model.train()
        for xb, yb in batches:
            optimizer.zero_grad(set_to_none=True)
            with autocast_context(device, settings.precision):
                loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), autocast_context(device, settings.precision):
            model(data.val_x)
    sync(device)
    return time.perf_counter() - started


def loop_epochs(model: torch.nn.Module, data: DataSplits, settings: FitSettings) -> float:
    sync(data.train_x.device)
    started = time.perf_counter()
    fit(model, data, settings)
    sync(data.train_x.device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dnn3")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--activation", default="coslu", help="activation put in every slot")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per measurement (set-up cost amortised)")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where data and model live")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available; choose --device cpu")
    # fit() tunes malloc and maps torch's read-only data for the process; done first, so the bare loop runs
    # with them too
    tune_malloc()
    prefault_torch()

    min_size = model_info(args.model).min_input_size
    data = load_data(DataConfig(name=args.dataset), device=args.device, min_size=min_size)
    settings = FitSettings(
        OptimConfig(), args.epochs, batch_size=args.batch_size, seed=0, precision=args.precision, augment=args.augment
    )

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        model = build_model(args.model, input_shape=data.input_shape, num_classes=data.num_classes).to(args.device)
        apply_plan(model, uniform_plan(args.activation), data.train_x[:2])
        return model

    loop_times, bare_times, default_times = [], [], []
    for repeat in range(args.repeats):  # interleaved, so machine load hits all alike
        # Alternating which of the pair runs first, so that neither always follows the other.
        for which in ("bare", "loop") if repeat % 2 == 0 else ("loop", "bare"):
            if which == "bare":
                bare_times.append(bare_epochs(fresh(), data, settings, fused=True))
            else:
                loop_times.append(loop_epochs(fresh(), data, settings))
        default_times.append(bare_epochs(fresh(), data, settings, fused=False))
    loop, bare, default = (statistics.median(t) / args.epochs * 1000 for t in (loop_times, bare_times, default_times))
    # Each repeat's own share: the two runs of a pair are a second apart, so the machine's slow drift
    # (epoch times here move by tens of percent between minutes) cancels within a pair.
    shares = sorted((lp - bp) / lp for lp, bp in zip(loop_times, bare_times, strict=True))
    low, median, high = statistics.quantiles(shares, n=4) if len(shares) > 1 else shares * 3
    machine = platform.processor() or platform.machine()
    if args.device == "cuda":
        machine = torch.cuda.get_device_name()
    print(f"machine: {machine}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(
        f"{args.model} + {args.activation} on {args.dataset} ({len(data.train_x)} train, {len(data.val_x)} val), "
        f"{args.device} {args.precision}"
    )
    print(f"{'epoch through fit':<40}{loop:9.1f} ms")
    print(f"{'bare fwd/bwd/step, fused Adam (as fit)':<40}{bare:9.1f} ms")
    print(f"{'bare fwd/bwd/step, default Adam':<40}{default:9.1f} ms")
    print(f"{'outside fwd/bwd/step, of medians':<40}{(loop - bare) / loop:9.1%}")
    print(f"{'outside fwd/bwd/step, median pair':<40}{median:9.1%}  (quartiles {low:.1%}, {high:.1%}; target < 5 %)")
    print(f"{'fit / bare loop with default Adam':<40}{loop / default:9.2f}x")


if __name__ == "__main__":
    main()
