"""``lincomb_bases``: which basis functions a LinComb mixes, with which initial weights."""

from __future__ import annotations

import optuna

from aaf_search.config import TrialConfig
from aaf_search.spaces.common import everywhere, suggest_adam, suggest_shape
from aaf_search.spaces.space import SearchSpace, SpaceDefaults

BASES = ("relu", "sigmoid", "tanh", "softsign", "silu", "gelu", "identity")
ORIGINAL_BASES = ("relu", "sigmoid", "tanh", "softsign")  # seed 000's four
W_RANGE = (0.05, 1.0)  # lower bound > 0: NormLinComb divides by the sum of the weights


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 000's LinComb: y = sum_i w_i f_i(x) over a chosen subset of basis functions.

    Params:
      act/family          lincomb or normlincomb (divides by the sum of the weights, as the code does).
      act/basis/<name>    include the basis <name>? for relu, sigmoid, tanh, softsign, silu, gelu,
                          identity; an empty subset means seed 000's own four (relu, sigmoid, tanh,
                          softsign), so every trial is a valid LinComb.
      act/w_init          equal (1/k each, the original) or sampled.
      act/w/<name>        initial weight of each chosen basis in [0.05, 1] (only when sampled).
      act/shape           network (one set for the whole network, the original) or layer.
      opt/lr              Adam learning rate, log-uniform in [1e-4, 1e-2].
    """
    family = trial.suggest_categorical("act/family", ("lincomb", "normlincomb"))
    chosen = [b for b in BASES if trial.suggest_categorical(f"act/basis/{b}", (True, False))]
    bases = chosen or list(ORIGINAL_BASES)
    if trial.suggest_categorical("act/w_init", ("equal", "sampled")) == "equal":
        weights = [1.0 / len(bases)] * len(bases)
    else:
        weights = [trial.suggest_float(f"act/w/{b}", *W_RANGE) for b in bases]
    shape = suggest_shape(trial, "act/shape", ("network", "layer"))
    plan = everywhere(family, shape=shape, init={"w": weights}, options={"bases": bases})
    return defaults.trial(plan=plan, optim=suggest_adam(trial))


SPACE = SearchSpace(
    name="lincomb_bases",
    summary="LinComb / NormLinComb basis subset and initial weights",
    suggest=suggest,
    defaults=SpaceDefaults(model="dnn3", epochs=4),
    source="seed 000 (TrainableActivation)",
)
