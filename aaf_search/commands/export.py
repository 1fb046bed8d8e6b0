"""``aaf-search export``: write a trial of a study (the best by default) as a self-contained YAML."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Export the best (or K-th best) trial of a study as a config YAML for aaf-search train."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aaf_search.search import DEFAULT_STORAGE

    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    parser.add_argument("--study", help="study name (default: the storage's only study)")
    parser.add_argument("--out", type=Path, default=Path("best.yaml"), help="file to write (default: best.yaml)")
    parser.add_argument("--rank", type=int, default=1, help="1 = the best complete trial, 2 = the runner-up, ...")


def run(args: argparse.Namespace) -> int:
    from aaf_search.search import load_study, pick, write_export

    study = load_study(args.storage, args.study)
    trial = pick(study, args.rank)
    path = write_export(args.out, study, args.rank)
    print(f"{study.study_name} trial {trial.number} (rank {args.rank}, score {trial.values[0]:.4f}) -> {path}")
    return 0
