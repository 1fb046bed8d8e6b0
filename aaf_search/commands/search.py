"""``aaf-search [search] --space NAME``: run or continue a search and export its best config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Search activation configurations over a space (a catalog name, NAME.yaml or module:function)."

DEFAULT_TRIALS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Names are validated against the tables when the search starts (one-line errors that list them);
    # the help text lists them too, read from the same tables.
    from aaf_search.search import BACKENDS, DEFAULT_STORAGE, OBJECTIVES, PRUNERS, SAMPLERS, default_backend
    from aaf_search.spaces import CATALOG

    add = parser.add_argument
    add("--space", required=True, help=f"{', '.join(CATALOG)}; or a space file NAME.yaml; or package.module:function")
    add("--model", help="override the space's model (aaf-search models lists them)")
    add("--dataset", help="override the space's data set (default of every catalog space: digits)")
    add("--data-root", help="where data sets are read from (default: data)")
    add("--download", action="store_true", default=None, help="download a torchvision data set when absent")
    add("--trials", type=int, default=DEFAULT_TRIALS, help="finished (complete + pruned) trials the study should hold")
    add("--epochs", type=int, help="epochs per trial (default: the space's budget)")
    add(
        "--precision",
        help="fp32, bf16 (autocast, CPU or CUDA), fp16 (CUDA, with loss scaling) (default: the space's, fp32)",
    )
    add("--sampler", default="tpe", help=f"{', '.join(SAMPLERS)} (default: tpe)")
    add("--pruner", help=f"{', '.join(PRUNERS)} (default: asha; none with several objectives)")
    add("--backend", default=default_backend(), help=f"{', '.join(BACKENDS)} (default: {default_backend()})")
    add("--address", help="Ray: address of a running cluster (default: start a local one)")
    add("--gpus-per-trial", type=float, help="Ray: GPUs per trial, fractions allowed (default: 1 with GPUs, else 0)")
    add("--cpus-per-trial", type=float, help="CPUs per trial (local: torch threads)")
    add("--max-concurrent", type=int, help="Ray: trials running at once")
    add("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL or journal:PATH (default: {DEFAULT_STORAGE})")
    add("--study", help="study name (default: the space's name)")
    add(
        "--seed",
        type=int,
        default=0,
        help="study seed: the sampler's (per process on a journal or server) and every trial's seed derive from it",
    )
    add(
        "--out",
        type=Path,
        help="run directory for trial outputs and best.yaml (default: the study's, where its last search wrote; "
        "aaf-runs/<study> for a new study)",
    )
    add("--objectives", default="accuracy", help=f"comma-separated, accuracy first: {', '.join(OBJECTIVES)}")
    add(
        "--retry-failed",
        action="store_true",
        help="run trials that were cut off (by a killed or interrupted search, a dead Ray worker) again, "
        "carrying each on from its checkpoint",
    )
    add(
        "--timeout",
        type=_duration,
        help="start no trial after this long (600, 90s, 30m, 1h30m); running trials finish; --trials still caps",
    )
    add(
        "--enqueue",
        action="append",
        type=_point,
        default=[],
        metavar="NAME=VALUE,...",
        help="a configuration to run first (repeatable); parameters left out are sampled",
    )


def _point(text: str) -> dict[str, str]:
    from aaf_search.search.enqueue import parse_point

    try:
        return parse_point(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    from aaf_search.search.duration import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    import optuna

    from aaf_search.search import Resources, SearchSettings, run_search
    from aaf_search.search.summary import summarize

    # The progress line reports every trial; Optuna's own per-trial INFO/WARNING lines would bury it.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    settings = SearchSettings(
        space=args.space,
        trials=args.trials,
        sampler=args.sampler,
        pruner=args.pruner,
        backend=args.backend,
        storage=args.storage,
        study=args.study,
        seed=args.seed,
        out=args.out,
        objectives=tuple(args.objectives.split(",")),
        retry_failed=args.retry_failed,
        timeout=args.timeout,
        enqueue=tuple(args.enqueue),
        model=args.model,
        dataset=args.dataset,
        data_root=args.data_root,
        download=args.download,
        epochs=args.epochs,
        precision=args.precision,
        resources=Resources(
            address=args.address,
            gpus_per_trial=args.gpus_per_trial,
            cpus_per_trial=args.cpus_per_trial,
            max_concurrent=args.max_concurrent,
        ),
    )
    outcome = run_search(settings, stream=sys.stderr)
    print(summarize(outcome, settings.storage))
    # Not a user mistake (2): the trials failed. A script that goes on to train best.yaml should stop here.
    return 1 if outcome.gave_up else 0
