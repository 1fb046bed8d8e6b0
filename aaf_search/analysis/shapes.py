"""Which activation sits in which slot of a trial, and its learned shape as the figures draw it.

The stored summary (``activation_params``) is keyed by slot; the trial config says which plan entry put
what there. The slot -> entry mapping is resolved as the trial resolved it, on the model's own slot names
and tags; slots that share one module (shape ``network``) are drawn once.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial

from aaf_search.analysis.figures import ShapeRow
from aaf_search.config import ActivationSpec, TrialConfig
from aaf_search.search.recording import ATTR_ACTIVATION_PARAMS, ATTR_CONFIG
from aaf_search.trials.plan import PlanError, dataset_slots, resolve_plan

ONE_SET = ("network", "layer")  # shapes whose stored ``values`` describe the whole activation


def slot_entries(config: TrialConfig, slots: list[str]) -> dict[str, int]:
    """Slot -> index of the plan entry that decides it, for the slots named in ``slots``.

    Built on the model's slots (their tags decide ``tag:`` selectors). A model that cannot be built here
    (a torchvision model whose slots only appear after a forward pass) falls back to matching the
    selectors on the stored slot names, where ``tag:`` selectors match nothing.
    """
    try:
        # At the size the trial trained at: VanillaNet on 8x8 digits is built (and trained) at 32x32.
        decided = resolve_plan(config.plan, dataset_slots(config.model, config.data.name))
    except (PlanError, KeyError, ValueError, RuntimeError):
        decided = {}
        for index, entry in enumerate(config.plan):
            for name in slots:
                if entry.select == "all" or fnmatch.fnmatchcase(name, entry.select):
                    decided[name] = index
    return {name: decided[name] for name in slots if name in decided}


def learned_values(spec: ActivationSpec, summary: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Param -> what to draw: the exact ``values`` of a one-set vector, else the mean."""
    learned: dict[str, Any] = {}
    for name, stats in summary.items():
        exact = spec.shape in ONE_SET and "values" in stats
        learned[name] = [float(v) for v in stats["values"]] if exact else float(stats["mean"])
    return learned


def shape_rows(trial: FrozenTrial) -> tuple[list[ShapeRow], list[str]]:
    """The trial's learned activations, one :class:`ShapeRow` per drawn slot, and the slots drawn.

    A ``network``-shaped entry shares one module between its slots: one row, titled with its first slot.
    """
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]] = trial.user_attrs.get(ATTR_ACTIVATION_PARAMS) or {}
    if not summary or ATTR_CONFIG not in trial.user_attrs:
        return [], []
    config = TrialConfig.from_dict(trial.user_attrs[ATTR_CONFIG])
    entries = slot_entries(config, list(summary))
    shared: dict[int, list[str]] = {}
    rows: list[tuple[str, int]] = []
    for slot in summary:
        if slot not in entries:
            continue
        index = entries[slot]
        if config.plan[index].activation.shape == "network":
            if index in shared:
                shared[index].append(slot)
                continue
            shared[index] = [slot]
        rows.append((slot, index))
    drawn: list[ShapeRow] = []
    for slot, index in rows:
        spec = config.plan[index].activation
        others = len(shared.get(index, [slot])) - 1
        label = f"{slot} (+{others} shared)" if others else slot
        learned = learned_values(spec, summary[slot])
        drawn.append(ShapeRow(label, spec.family, spec.init, learned, dict(spec.options), spec.shape))
    return drawn, [slot for slot, _ in rows]
