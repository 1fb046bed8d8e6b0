"""``aaf-search spaces [SPACE]``: the catalog with each space's documentation, parameters and defaults."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aaf_search.config import TrialConfig
    from aaf_search.spaces import SearchSpace

HELP = "List the search spaces with their documentation, parameters and defaults."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", nargs="?", help="show one space (a catalog name, NAME.yaml or module:function)")
    parser.add_argument("--brief", action="store_true", help="one line per space")
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="with a space: N configurations drawn at random, each with the activations it puts where",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --sample draws (default: 0)")


def run(args: argparse.Namespace) -> int:
    import optuna

    from aaf_search.spaces import CATALOG, resolve_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the probe studies would announce themselves
    if args.sample is not None:
        return _print_samples(args)
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


def _print_samples(args: argparse.Namespace) -> int:
    from aaf_search.errors import UserError
    from aaf_search.spaces import resolve_space
    from aaf_search.spaces.probe import random_samples

    if not args.space:
        raise UserError("--sample needs a space: aaf-search spaces NAME --sample N")
    if args.sample < 1:
        raise UserError(f"--sample must be >= 1, got {args.sample}")
    space = resolve_space(args.space)
    samples = random_samples(space, space.defaults, args.sample, seed=args.seed)
    print("\n\n".join(describe_sample(i, params, config) for i, (params, config) in enumerate(samples, start=1)))
    return 0


def describe_sample(index: int, params: dict[str, object], config: TrialConfig) -> str:
    """One drawn configuration: its parameters, then what each plan entry puts where, then the training."""
    drawn = ", ".join(f"{name}={_short(value)}" for name, value in params.items())
    lines = [f"sample {index}", textwrap.fill(drawn, 104, initial_indent="  params: ", subsequent_indent=" " * 10)]
    for entry in config.plan:
        spec = entry.activation
        parts = [spec.family, f"shape {spec.shape}"]
        if isinstance(spec.init, str):
            parts.append(f"init {spec.init}")
        elif spec.init:
            parts.append("init " + ", ".join(f"{key}={_short(value)}" for key, value in spec.init.items()))
        parts += [f"{key}={_short(value)}" for key, value in spec.options.items()]
        if not spec.trainable:
            parts.append("frozen")
        lines.append(f"  {entry.select:<20} -> {', '.join(parts)}")
    if not config.plan:
        lines.append(f"  (no plan: every slot keeps {config.base_activation})")
    optim = config.optim
    lines.append(
        f"  {config.model} on {config.data.name}, {config.epochs} epochs, batch {config.batch_size}, "
        f"{optim.name} lr {_short(optim.lr)}, {config.precision}"
    )
    return "\n".join(lines)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(item) for item in value) + "]"
    return str(value)
