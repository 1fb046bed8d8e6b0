"""The activation functions a trained model learned, slot by slot and channel by channel, as curves.

Where the study report draws a trial's shapes from the per-epoch summary it stored (one mean per
parameter), a saved run (:func:`aaf_search.trials.runner.load_run`) has the exact weights: each slot's
module is evaluated on a grid of inputs, once per channel for per-channel and per-neuron parameters,
beside the same module as the run built it before training.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from aaf_search.activations.plot import activation_curve
from aaf_search.activations.registry import Activation
from aaf_search.analysis.figures import X_RANGE, LearnedCurves
from aaf_search.trials.plan import describe_slots
from aaf_search.trials.runner import TrainedRun, initial_model, load_run
from aaf_search.trials.slots import iter_slots

POINTS = 201


def learned_in_run(run_dir: Path | str) -> tuple[TrainedRun, list[LearnedCurves]]:
    """The run saved in ``run_dir`` and the curves of its trained activations (none: an empty list)."""
    run = load_run(run_dir)
    initial = initial_model(run.config, run.data, run.data.train_x.device)
    return run, learned_curves(run.model, initial, run.data.train_x[:2])


def learned_curves(trained: nn.Module, initial: nn.Module, example_input: Tensor) -> list[LearnedCurves]:
    """Every slot module of ``trained`` with a trainable parameter, evaluated beside ``initial``'s.

    ``initial`` is the same model before training (:func:`~aaf_search.trials.runner.initial_model`);
    ``example_input`` (a batch of the run's data) gives each slot's input shape, along which channels lie.
    """
    shapes = {name: info.shapes for name, info in describe_slots(trained, example_input).items()}
    before = dict(iter_slots(initial))
    grouped: dict[int, list[str]] = {}
    modules: dict[int, tuple[Activation, nn.Module]] = {}
    for name, slot in iter_slots(trained):
        module = slot.act
        if not isinstance(module, Activation) or not any(p.requires_grad for p in module.parameters()):
            continue
        grouped.setdefault(id(module), []).append(name)
        modules[id(module)] = (module, before[name].act)
    x = torch.linspace(*X_RANGE, POINTS)
    result = []
    for key, names in grouped.items():
        module, start = modules[key]
        inputs = _channel_grid(x, shapes, names[0], module)
        result.append(
            LearnedCurves(
                slots=tuple(names),
                family=type(module).family,
                x=x.numpy().astype(float),
                initial=_columns(start, inputs),
                learned=_columns(module, inputs),
            )
        )
    return result


def _channel_grid(x: Tensor, shapes: Mapping[str, tuple[tuple[int, ...], ...]], slot: str, module: nn.Module) -> Tensor:
    """``x`` in every channel of the slot's input: shape (POINTS, C, 1, ...), the input's rank kept.

    Slot shapes leave out the batch dim: (C, H, W) after a convolution, (F,) after a linear layer. The
    trailing dims are 1 (the parameters broadcast over them), so the grid stays small for any layer. A
    slot the example did not reach (no shape) gets a plain vector.
    """
    seen = shapes.get(slot) or ()
    if not seen or not seen[0]:
        return x
    shape = seen[0]
    grid = x.to(next(module.parameters()).device).view(POINTS, *([1] * len(shape)))
    return grid.expand(POINTS, shape[0], *([1] * (len(shape) - 1))).contiguous()


def _columns(module: nn.Module, inputs: Tensor) -> np.ndarray:
    """The module's output on ``inputs`` as (POINTS, K): its distinct curves, in channel order."""
    columns = activation_curve(module, inputs).reshape(POINTS, -1)
    _, first = np.unique(columns.round(9), axis=1, return_index=True)
    return columns[:, np.sort(first)]
