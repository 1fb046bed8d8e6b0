"""What keeping a checkpoint costs a trial: each space's default model trained with and without one.

    python benchmarks/checkpoint_cost.py [--repeats 3] [--epochs-scale 1]

Every search trial, ``train`` run and robustness seed run saves its state so that an interrupted one
carries on (``aaf_search.trials.checkpoint``), spaced so that saving costs at most 2 % of the training
time (the first save once the run has trained 50 times its estimated cost). For each space's default
model on digits (its default epochs and batch size, CosLU in every slot), the same trial runs with
``resumable=False`` and ``=True``, the two alternating (each first in every other round) over
``--repeats`` rounds; the table gives the median seconds of each, their ratio, the saves a run made
with the median time one took, and the share of the run's time those saves took (the target: at most
2 %; the ratio, of runs of a second or two, also holds the machine's noise).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.text_table import aligned
from aaf_search.trials import checkpoint
from aaf_search.trials.runner import run_trial

# (model, epochs, batch size): the defaults of lslu_depth, lincomb_bases/trainable_zoo, apa_init, leaf_init,
# placement/pretrained_swap
MODELS = (("vanillanet", 5, 32), ("dnn3", 4, 64), ("se_resnet32", 3, 64), ("lenet5", 3, 64), ("kerasnet", 3, 64))


def timed_run(config: TrialConfig, out_dir: Path, *, resumable: bool) -> float:
    shutil.rmtree(out_dir, ignore_errors=True)
    started = time.perf_counter()
    run_trial(config, out_dir=out_dir, resumable=resumable)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both runs per model (default 3)")
    parser.add_argument("--epochs-scale", type=int, default=1, help="multiply each model's epochs (default 1)")
    args = parser.parse_args()
    if args.repeats < 1 or args.epochs_scale < 1:
        parser.error("--repeats and --epochs-scale must be at least 1")
    saves: list[float] = []
    save = checkpoint.Checkpoint.save

    def counted_save(self: checkpoint.Checkpoint, *rest: object) -> None:
        started = time.perf_counter()
        save(self, *rest)  # type: ignore[arg-type]
        saves.append(time.perf_counter() - started)

    checkpoint.Checkpoint.save = counted_save  # type: ignore[method-assign]
    print(
        f"machine: {platform.machine()} ({torch.backends.cpu.get_cpu_capability()} kernels), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; digits, CosLU in every slot"
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model, epochs, batch_size in MODELS:
            config = TrialConfig(
                model=model,
                plan=(PlanEntry("all", ActivationSpec("coslu")),),
                epochs=epochs * args.epochs_scale,
                batch_size=batch_size,
                seed=1,
            )
            run_trial(config)  # compiles the fused kernels and warms the data cache before any timing
            plain: list[float] = []
            kept: list[float] = []
            saves.clear()
            for round_ in range(args.repeats):
                for resumable in (False, True) if round_ % 2 == 0 else (True, False):  # neither always first
                    seconds = timed_run(config, Path(scratch, str(resumable)), resumable=resumable)
                    (kept if resumable else plain).append(seconds)
            per_run = len(saves) / args.repeats
            ratio = statistics.median(kept) / statistics.median(plain)
            per_save = statistics.median(saves) if saves else 0.0  # a short run may save none
            share = per_run * per_save / statistics.median(plain)
            rows.append(
                [
                    model,
                    str(config.epochs),
                    f"{statistics.median(plain):.2f}",
                    f"{statistics.median(kept):.2f}",
                    f"{ratio:.3f}",
                    f"{per_run:.1f}",
                    f"{per_save * 1e3:.1f}" if saves else "-",
                    f"{share:.1%}",
                ]
            )
            print(f"  {model} done", file=sys.stderr)
    header = [
        "model",
        "epochs",
        "without s",
        "with s",
        "with / without",
        "saves per run",
        "ms per save",
        "saving share",
    ]
    print(aligned(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
