"""``placement``: a family per slot group (conv, fc), including keeping the base activation."""

from __future__ import annotations

import optuna

from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.spaces.common import suggest_adam, tagged_slots
from aaf_search.spaces.space import SearchSpace, SpaceDefaults, SpaceError

KEEP = "keep"  # leave the group's slots with the model's base activation
GROUPS: dict[str, tuple[str, ...]] = {
    "conv": (KEEP, "ahaf", "leaf", "coslu", "lincomb", "aglu", "prelu"),
    # F-neuron only in the fully connected layers, as every seed-001/003 network uses it.
    "fc": (KEEP, "ahaf", "leaf", "coslu", "lincomb", "aglu", "prelu", "fneuron"),
}
"""Slot group (a slot tag) -> the families it may get; each group is one ``act/<group>/family``."""


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Where should trainable activations go? One family per group of slots, "keep" allowed.

    Params:
      act/conv/family  keep, ahaf, leaf, coslu, lincomb, aglu or prelu for every slot tagged conv.
      act/fc/family    the same plus fneuron for every slot tagged fc.
      opt/lr           Adam learning rate, log-uniform in [1e-4, 1e-2].

    Each family is used at its default init with one parameter set per slot (shape "layer"); the
    model's base activation stays ReLU. "keep" in both groups is the ReLU baseline. A group the model
    has no slot of (conv in an MLP, fc in a CIFAR ResNet or VanillaNet) is not searched.
    """
    groups = {group: families for group, families in GROUPS.items() if tagged_slots(defaults, group)}
    if not groups:
        raise SpaceError(
            f"space 'placement' places activations by slot group ({', '.join(GROUPS)}), and model "
            f"'{defaults.model}' has no slot tagged {' or '.join(GROUPS)}"
        )
    plan = []
    for group, families in groups.items():
        family = trial.suggest_categorical(f"act/{group}/family", families)
        if family != KEEP:
            plan.append(PlanEntry(f"tag:{group}", ActivationSpec(family)))
    return defaults.trial(base_activation="relu", plan=tuple(plan), optim=suggest_adam(trial))


SPACE = SearchSpace(
    name="placement",
    summary="one family per slot group (conv / fc), including keeping the base activation",
    suggest=suggest,
    defaults=SpaceDefaults(model="kerasnet", epochs=3),
    source="seeds 001/003 placements (all, FFN only)",
)
