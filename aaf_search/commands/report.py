"""``aaf-search report``: tables, figures and an index of a study, from its storage alone."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Write a study's tables (CSV/Markdown/LaTeX), figures and index.md, from the storage alone."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aaf_search.search import DEFAULT_STORAGE

    add = parser.add_argument
    add("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL or journal:PATH (default: {DEFAULT_STORAGE})")
    add("--study", help="the search's study (default: the storage's only search study)")
    add("--out", type=Path, help="directory to write (default: report/ in the search's run directory)")
    add("--svg", action="store_true", help="write every figure as SVG too")
    add(
        "--runs",
        type=Path,
        help="the search's run directory, with the trials' weights (default: those the study recorded, "
        "its searches' --out or aaf-runs/<study>)",
    )


def run(args: argparse.Namespace) -> int:
    from aaf_search.analysis.studies import load_with_companion
    from aaf_search.outdir import check_out_dir
    from aaf_search.search.rundir import run_dirs_of

    study, companion = load_with_companion(args.storage, args.study)
    own = run_dirs_of(study.study_name, study.user_attrs)  # the latest first: the report goes there
    out = args.out or own[0] / "report"
    check_out_dir(out, "--out" if args.out else "report directory")
    # Imported once the study and the directory are known good: the figures need torch and matplotlib.
    from aaf_search.analysis.report import write_report

    report = write_report(study, companion, out, svg=args.svg, runs=[args.runs] if args.runs else own)
    print(f"{study.study_name}: {len(report.tables)} tables, {len(report.figures)} figures -> {report.index}")
    for note in report.notes:
        print(f"  note: {note}")
    return 0
