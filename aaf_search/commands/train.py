"""``aaf-search train --config FILE.yaml``: train one trial config and save its weights and metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from aaf_search.config import DEVICES, META_CPU_THREADS, PRECISIONS, TrialConfig, load_yaml

HELP = "Train one trial config (an exported best.yaml, say) and save weights and metrics."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="trial config YAML (from export, or by hand)")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epoch count")
    parser.add_argument("--device", choices=DEVICES, default=None, help="override the config's device")
    parser.add_argument("--precision", choices=PRECISIONS, default=None, help="override the config's precision")
    parser.add_argument(
        "--dataset",
        default=None,
        help="train on this data set instead of the config's (a winner found on digits: cifar10)",
    )
    parser.add_argument("--data-root", default=None, help="override where data sets are read from")
    parser.add_argument(
        "--download", action="store_true", default=None, help="download a torchvision data set when absent"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the count the exported trial ran with, else torch's choice)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run directory (default aaf-runs/train/<config hash>[-threads<N>])"
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors and the final result line")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="train from epoch 1 even when the run directory holds a checkpoint of this config (an interrupted run)",
    )


def default_run_dir(config: TrialConfig, threads: int | None) -> Path:
    """``aaf-runs/train/<config digest>``, plus the thread count when one is set: a CPU run's numbers depend
    on it (see :func:`cpu_threads`), so runs with other counts must not overwrite each other."""
    name = config.digest() if threads is None else f"{config.digest()}-threads{threads}"
    return Path("aaf-runs") / "train" / name


def cpu_threads(asked: int | None, metadata: dict[str, Any]) -> int | None:
    """The torch CPU thread count to train with: ``--threads``, else the exported trial's, else None (torch's).

    Why: reductions split across threads add in a different order, so a CPU run's numbers depend on the
    thread count; a search's workers often run one thread each while ``train`` would take every core.
    """
    from aaf_search.config import ConfigError

    if asked is not None:
        if asked < 1:
            raise ConfigError(f"--threads must be >= 1, got {asked}")
        return asked
    recorded = metadata.get(META_CPU_THREADS)
    return recorded if isinstance(recorded, int) and recorded >= 1 else None


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from aaf_search.config import ConfigError
    from aaf_search.outdir import check_out_dir

    config, metadata = load_yaml(args.config)
    changes: dict[str, object] = {}
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.epochs is not None:
        if args.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
        changes["epochs"] = args.epochs
    if args.device is not None:
        changes["device"] = args.device
    if args.precision is not None:
        changes["precision"] = args.precision
    notes: list[str] = []  # shown with the first epoch (see below)
    data = config.data
    if args.dataset is not None and args.dataset != data.name:
        from aaf_search.trials.data import with_dataset

        data, dropped = with_dataset(data, args.dataset)
        if dropped and not args.quiet:
            notes.append(f"not passing data option(s) {', '.join(dropped)} to data set '{args.dataset}': it takes none")
    if args.data_root is not None:
        data = replace(data, root=args.data_root)
    if args.download:
        data = replace(data, download=True)
    config = config.replace(**changes, data=data)
    threads = cpu_threads(args.threads, metadata)
    out = args.out or default_run_dir(config, threads)
    check_out_dir(out, "--out" if args.out else "run directory")
    # Imported once the config and the options passed: torch and the models take seconds to import.
    import torch

    from aaf_search.trials.checkpoint import Checkpoint
    from aaf_search.trials.report import EpochReport
    from aaf_search.trials.runner import run_trial

    checkpoint = Checkpoint.in_run_dir(out, config.digest())
    if args.restart:
        checkpoint.remove()
    resumed = checkpoint.epochs_done()
    if resumed and not args.quiet:
        notes.append(
            f"carrying on from the checkpoint in {out}: {resumed} of {config.epochs} epochs done "
            "(--restart to start over)"
        )

    # Shown with the first epoch, once the config's device and data proved usable: a refused config
    # leaves its one error line alone.
    if threads is not None and args.threads is None and not args.quiet:
        notes.append(f"using {threads} CPU thread(s), as the exported trial did (--threads to change)")

    def show(report: EpochReport) -> None:
        while notes:
            print(notes.pop(0), file=sys.stderr)
        if not args.quiet and report.epoch > resumed:  # the checkpoint's epochs were shown when they ran
            print(
                f"epoch {report.epoch:>3}/{config.epochs}  train loss {report.train_loss:.4f}  "
                f"val loss {report.val_loss:.4f}  val acc {report.val_accuracy:.4f}  {report.epoch_seconds:.2f}s",
                file=sys.stderr,
            )

    if threads is not None:
        torch.set_num_threads(threads)
    result = run_trial(config, on_epoch=show, out_dir=out, resumable=True)
    epochs = f"{result.epochs_run} epoch{'' if result.epochs_run == 1 else 's'}"
    if resumed:
        epochs += f" ({resumed} before the interruption)"
    print(
        f"{config.model} on {config.data.name}: val acc {result.val_accuracy:.4f} (epoch {result.best_epoch}), "
        f"test acc {result.test_accuracy:.4f}, {epochs} in {result.seconds:.1f}s -> {out}"
    )
    return 0
