"""``aaf-search activations list|plot``: what the registry holds, as a table or as pictures."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "List the registered activations, or plot every one at its presets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="{list,plot}")
    actions.add_parser("list", help="print the registry: parameters, shapes, presets, options")
    plot = actions.add_parser(
        "plot", help="draw activations at their presets, all or those named (one PNG per family + overview)"
    )
    plot.add_argument("families", nargs="*", metavar="FAMILY", help="only these (default: every activation)")
    plot.add_argument(
        "--run",
        type=Path,
        metavar="DIR",
        help="instead: what a saved run (train's, or a search's trials/NNNN) learned, slot by slot and per channel",
    )
    plot.add_argument(
        "--out", type=Path, help="output directory (default: aaf-runs/activations; with --run, the run's directory)"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "plot" and args.run is not None:
        return _plot_run(args)
    if args.action == "plot":
        from aaf_search.activations.plot import plot_activations
        from aaf_search.outdir import check_out_dir

        out = args.out or Path("aaf-runs/activations")
        check_out_dir(out)
        paths = plot_activations(out, args.families)
        print(f"wrote {len(paths)} figures to {out} (overview: {out / 'overview.png'})")
        return 0
    from aaf_search.activations.listing import format_registry

    print(format_registry())
    return 0


def _plot_run(args: argparse.Namespace) -> int:
    from aaf_search.errors import UserError
    from aaf_search.outdir import check_out_dir

    if args.families:
        raise UserError("--run draws the activations a run learned; name no families with it")
    from aaf_search.analysis.figures import learned_activations
    from aaf_search.analysis.learned import learned_in_run

    run, modules = learned_in_run(args.run)  # first: a wrong --run is named as such, not as a wrong --out
    out = args.out or args.run
    check_out_dir(out)
    if not modules:
        planned = ", ".join(f"{e.activation.family} at {e.select}" for e in run.config.plan) or "empty"
        raise UserError(
            f"run '{args.run}' has no trained activation to draw: its plan ({planned}) puts in none with "
            "parameters, or freezes them"
        )
    (path, *_) = learned_activations(modules, out / "learned_activations.png")
    print(f"{len(modules)} trained activation module(s) of {run.config.model} -> {path}")
    return 0
