"""``aaf-search robust``: re-train a study's top-K configurations and a baseline under several seeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Re-train the top-K configurations of a study and a baseline under several seeds; compare them."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aaf_search.analysis.robust_settings import DEFAULT_TOP_K, SEEDS
    from aaf_search.search import BACKENDS, DEFAULT_STORAGE, default_backend

    add = parser.add_argument
    add("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL or journal:PATH (default: {DEFAULT_STORAGE})")
    add("--study", help="the search's study (default: the storage's only search study)")
    add("--top-k", type=int, default=DEFAULT_TOP_K, help=f"distinct complete configurations (default: {DEFAULT_TOP_K})")
    seeds = ",".join(map(str, SEEDS))
    add("--seeds", default=seeds, help=f"seed values, comma-separated (default: {seeds})")
    add("--baseline", default="relu", help="the baseline's activation, in every slot (default: relu)")
    add("--backend", default=default_backend(), help=f"{', '.join(BACKENDS)} (default: {default_backend()})")
    add("--epochs", type=int, help="epochs per run (default: each configuration's own)")
    add(
        "--out",
        type=Path,
        help="where robust.csv/.md/.tex and the runs go (default: robust/ in the search's run directory)",
    )


def run(args: argparse.Namespace) -> int:
    import optuna

    from aaf_search.analysis.robust_settings import RobustSettings, parse_seeds
    from aaf_search.search import DEFAULT_STORAGE
    from aaf_search.search.export import load_study
    from aaf_search.search.storage import redact

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # A bad --seeds, or a storage or study that is not there, is refused before torch is imported.
    seeds = parse_seeds(args.seeds)
    study = load_study(args.storage, args.study)
    from aaf_search.analysis import robust_table
    from aaf_search.analysis.robust import run_robust

    settings = RobustSettings(
        storage=args.storage,
        study=args.study,
        top_k=args.top_k,
        seeds=seeds,
        baseline=args.baseline,
        backend=args.backend,
        epochs=args.epochs,
        out=args.out,
    )
    outcome = run_robust(settings, study=study, stream=sys.stderr)
    result, written = robust_table.conclude(outcome)
    print(robust_table.text(result))
    print(f"ran {outcome.ran}, reused {outcome.reused}; wrote {', '.join(map(str, written))}")
    print(f"study '{outcome.companion.study_name}' holds the runs and the summary (aaf-search dashboard shows it)")
    storage = "" if args.storage == DEFAULT_STORAGE else f" --storage {redact(args.storage)}"
    print(f"figure: aaf-search report --study {study.study_name}{storage}  (robust.png, with the other figures)")
    return 0
