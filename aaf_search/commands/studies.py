"""``aaf-search studies``: the search studies of a storage, their trial counts, best and robustness runs."""

from __future__ import annotations

import argparse

HELP = "List the studies of a storage: space, trials by state, best score, robustness runs, start, run directory."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aaf_search.search import DEFAULT_STORAGE

    parser.add_argument(
        "--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL or journal:PATH (default: {DEFAULT_STORAGE})"
    )


def run(args: argparse.Namespace) -> int:
    from aaf_search.analysis.overview import format_lines, study_lines
    from aaf_search.search.storage import open_existing_storage, redact

    lines = study_lines(open_existing_storage(args.storage))
    print(format_lines(lines) if lines else f"no studies in {redact(args.storage)}")
    return 0
