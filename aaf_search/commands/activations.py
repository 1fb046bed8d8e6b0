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
    plot.add_argument("--out", type=Path, default=Path("aaf-runs/activations"), help="output directory")


def run(args: argparse.Namespace) -> int:
    if args.action == "plot":
        from aaf_search.activations.plot import plot_activations
        from aaf_search.outdir import check_out_dir

        check_out_dir(args.out)
        paths = plot_activations(args.out, args.families)
        print(f"wrote {len(paths)} figures to {args.out} (overview: {args.out / 'overview.png'})")
        return 0
    from aaf_search.activations.listing import format_registry

    print(format_registry())
    return 0
