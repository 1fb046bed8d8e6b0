"""``aaf-search export``: write a trial of a study (the best by default) as a self-contained YAML."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Export the best (K-th best, trial N, or seed-robust best) trial of a study as a config YAML for aaf-search train."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aaf_search.search import DEFAULT_STORAGE

    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    parser.add_argument("--study", help="study name (default: the storage's only study)")
    parser.add_argument("--out", type=Path, default=Path("best.yaml"), help="file to write (default: best.yaml)")
    parser.add_argument("--rank", type=int, default=1, help="1 = the best complete trial, 2 = the runner-up, ...")
    parser.add_argument(
        "--trial",
        type=int,
        metavar="N",
        help="complete trial number N (a point of a Pareto front, say: report labels them)",
    )
    parser.add_argument(
        "--robust",
        action="store_true",
        help="export the robust best of the last aaf-search robust, with per-seed scores",
    )


def run(args: argparse.Namespace) -> int:
    from aaf_search.errors import UserError
    from aaf_search.outdir import check_out_file
    from aaf_search.search import load_study, pick, write_export
    from aaf_search.search.export import pick_number

    if args.robust:
        return _run_robust(args)
    if args.trial is not None and args.rank != 1:
        raise UserError("--rank and --trial do not go together: each names one trial")
    study = load_study(args.storage, args.study)
    if args.trial is None:
        trial, rank = pick(study, args.rank), args.rank
    else:
        trial, rank = pick_number(study, args.trial)
    check_out_file(args.out)
    path = write_export(args.out, study, trial, rank)
    print(f"{study.study_name} trial {trial.number} (rank {rank}, score {trial.values[0]:.4f}) -> {path}")
    return 0


def _run_robust(args: argparse.Namespace) -> int:
    from aaf_search.analysis.robust_export import write_robust_export
    from aaf_search.analysis.studies import load_with_companion
    from aaf_search.errors import UserError
    from aaf_search.outdir import check_out_file

    if args.rank != 1 or args.trial is not None:
        option = "--rank" if args.rank != 1 else "--trial"
        raise UserError(f"{option} and --robust do not go together: there is one robust best")
    study, companion = load_with_companion(args.storage, args.study)
    check_out_file(args.out)
    path = write_robust_export(args.out, study, companion)
    print(f"{study.study_name}: robust best -> {path}")
    return 0
