"""``aaf-search spaces [SPACE]``: the catalog with each space's documentation, parameters and defaults."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aaf_search.spaces import SearchSpace

HELP = "List the search spaces with their documentation, parameters and defaults."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", nargs="?", help="show one space (a catalog name, NAME.yaml or module:function)")
    parser.add_argument("--brief", action="store_true", help="one line per space")


def run(args: argparse.Namespace) -> int:
    import optuna

    from aaf_search.spaces import CATALOG, resolve_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the probe studies would announce themselves
    spaces = [resolve_space(args.space)] if args.space else list(CATALOG.values())
    if args.brief:
        width = max(len(s.name) for s in spaces)
        print("\n".join(f"{s.name:<{width}}  {s.summary}" for s in spaces))
        return 0
    print("\n\n".join(describe_space(space) for space in spaces))
    return 0


def describe_space(space: SearchSpace) -> str:
    """The space's name, summary, source, defaults, documentation and probed parameters."""
    from aaf_search.spaces.probe import describe, sampled_params

    d = space.defaults
    params = sampled_params(space, d)
    width = max((len(name) for name in params), default=0)
    lines = [
        f"{space.name}: {space.summary}",
        f"  source:   {space.source}",
        f"  defaults: model {d.model}, dataset {d.dataset}, {d.epochs} epochs, batch {d.batch_size}, "
        f"{d.precision}, {d.metric} ({d.direction})",
        "",
        textwrap.indent(space.doc, "  "),
        "",
        "  parameters (as sampled):",
        *(f"    {name:<{width}}  {describe(dist)}" for name, dist in params.items()),
    ]
    return "\n".join(lines)
