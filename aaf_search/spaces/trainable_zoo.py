"""``trainable_zoo``: seed 000's trainable families against ReLU, shared network-wide as the original."""

from __future__ import annotations

import optuna

from aaf_search.config import TrialConfig
from aaf_search.spaces.common import everywhere, suggest_adam
from aaf_search.spaces.space import SearchSpace, SpaceDefaults

FAMILIES = ("relu", "coslu", "sinlu", "delu", "helu", "lincomb", "normlincomb", "relun", "scaledsoftsign", "shilu")
"""``relu`` is the baseline (the model's own activation); the rest replace it in every slot."""


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 000 (Pishchik, TrainableActivation): which family, in every slot, beats ReLU?

    Params:
      act/family  one of relu (baseline), coslu, sinlu, delu, helu, lincomb, normlincomb, relun,
                  scaledsoftsign, shilu; each at its original init, with one parameter set shared by
                  the whole network (shape "network"), as the original code shares one instance.
      opt/lr      Adam learning rate, log-uniform in [1e-4, 1e-2].
    """
    family = trial.suggest_categorical("act/family", FAMILIES)
    plan = () if family == "relu" else everywhere(family, shape="network")
    return defaults.trial(base_activation="relu", plan=plan, optim=suggest_adam(trial))


SPACE = SearchSpace(
    name="trainable_zoo",
    summary="seed 000's trainable families (shared network-wide) against ReLU",
    suggest=suggest,
    defaults=SpaceDefaults(model="dnn3", epochs=4),
    source="seed 000 (TrainableActivation)",
)
