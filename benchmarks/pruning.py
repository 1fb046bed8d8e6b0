"""Does pruning pay? The same real search on ``digits`` with and without a pruner, side by side.

Both searches use the same space, sampler seed and trial count; the pruned one stops bad trials early.
Reported: the best validation accuracy of each and the epochs each trained in total, for a few sampler
seeds and their mean. The target: the pruned search comes within 0.5 points of the unpruned best while
training at most 40 % of its epochs.

    python benchmarks/pruning.py [--space trainable_zoo] [--trials 32] [--epochs 8] [--pruner asha] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from aaf_search.search.driver import run_search
from aaf_search.search.settings import SearchSettings


def search(space: str, trials: int, epochs: int, pruner: str, seed: int, folder: Path) -> tuple[float, int, float]:
    """(best validation accuracy, epochs trained over all trials, seconds) of one local search."""
    settings = SearchSettings(
        space=space,
        trials=trials,
        epochs=epochs,
        pruner=pruner,
        sampler="tpe",
        seed=seed,
        backend="local",
        storage=f"journal:{folder / pruner}.log",
        out=folder / pruner,
    )
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        outcome = run_search(settings, stream=quiet)
    seconds = time.perf_counter() - started
    finished = [t for t in outcome.study.trials if t.state.is_finished()]
    epochs_run = sum(int(t.user_attrs.get("epochs_run", 0)) for t in finished)
    return float(outcome.study.best_value), epochs_run, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="trainable_zoo")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pruner", default="asha", help="the pruner compared with none")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of searches, with sampler seeds 0, 1, ...")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, optuna {optuna.__version__}"
    )
    print(f"space {args.space} on digits, {args.trials} trials x {args.epochs} epochs, TPE")
    print(f"{'seed':<6}{'pruner':<10}{'best val acc':>14}{'epochs trained':>16}{'seconds':>10}")
    gaps, shares = [], []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            rows = {
                name: search(args.space, args.trials, args.epochs, name, seed, Path(tmp))
                for name in ("none", args.pruner)
            }
        for name, (best, epochs, seconds) in rows.items():
            print(f"{seed:<6}{name:<10}{best:>14.4f}{epochs:>16}{seconds:>10.1f}")
        (full_best, full_epochs, _), (pruned_best, pruned_epochs, _) = rows["none"], rows[args.pruner]
        gaps.append((full_best - pruned_best) * 100)
        shares.append(pruned_epochs / full_epochs)
    # One validation sample of digits is 0.56 points, so one seed's gap is mostly noise: the mean decides.
    gap, share = statistics.mean(gaps), statistics.mean(shares)
    verdict = "met" if gap <= 0.5 and share <= 0.4 else "not met"
    print(
        f"mean over {args.repeats} seed(s): gap {gap:+.2f} points (target <= 0.5), "
        f"epochs {share:.0%} of unpruned (target <= 40 %): {verdict}"
    )


if __name__ == "__main__":
    main()
