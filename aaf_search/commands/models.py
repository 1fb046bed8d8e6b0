"""``aaf-search models [NAME]``: the model zoo, or one model's activation slots with tags and shapes."""

from __future__ import annotations

import argparse

HELP = "List the models, or show one model's activation slots (names, tags, shapes)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a model name (or tv:NAME) to show its slots")
    parser.add_argument("--dataset", default="digits", help="data set whose input shape to build for")
    parser.add_argument("--data-root", default="data", help="where data sets are read from")


def run(args: argparse.Namespace) -> int:
    from aaf_search.trials.models import model_info, model_names

    if args.name is None:
        for name in model_names():
            print(f"{name:<14} {model_info(name).summary}")
        print("tv:NAME        any torchvision classification model, e.g. tv:resnet18")
        return 0
    import torch

    from aaf_search.config import DataConfig
    from aaf_search.trials.data import load_data
    from aaf_search.trials.models import build_model
    from aaf_search.trials.plan import describe_slots

    data = load_data(DataConfig(name=args.dataset, root=args.data_root), min_size=model_info(args.name).min_input_size)
    model = build_model(args.name, input_shape=data.input_shape, num_classes=data.num_classes)
    with torch.no_grad():
        slots = describe_slots(model, data.train_x[:2])
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.name} for {args.dataset} {tuple(data.input_shape)}: {params:,} parameters, {len(slots)} slots")
    for slot in slots.values():
        shapes = ", ".join(str(s) for s in slot.shapes)
        print(f"  {slot.name:<28} {','.join(sorted(slot.tags)):<22} {shapes}")
    return 0
