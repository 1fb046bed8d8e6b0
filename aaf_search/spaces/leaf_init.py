"""``leaf_init``: LEAF / AHAF init-as presets with seed 003's training tricks."""

from __future__ import annotations

import optuna

from aaf_search.config import OptimConfig, TrialConfig
from aaf_search.spaces.common import Shape, everywhere, suggest_shape
from aaf_search.spaces.space import SearchSpace, SpaceDefaults

INIT_AS = {
    "leaf": ("as_relu", "as_silu", "as_tanh", "as_sigmoid"),
    "ahaf": ("as_relu", "as_silu"),
}
SHAPES: tuple[Shape, ...] = ("neuron", "layer")  # per-neuron (leaf-aaf) or one set per layer ("_shared")
LR = {"adam": 1e-3, "rmsprop": 1e-4}  # seed 003's fixed learning rates (Keras defaults for RMSprop)


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 003 (Bodyanskiy & Kostiuk, LEAF): which init and which update scheme train LEAF/AHAF best.

    Params:
      act/family          leaf or ahaf, in every slot.
      act/init_as/leaf    as_relu, as_silu, as_tanh or as_sigmoid (for LEAF).
      act/init_as/ahaf    as_relu or as_silu (for AHAF).
      act/shape           neuron (one set per neuron, the original) or layer (the "_shared" variants).
      opt/name            adam (lr 1e-3) or rmsprop (lr 1e-4), the seed's two optimisers and rates.
      opt/p24sl           LEAF only: train p2 and p4 with lr/1000 (adam) or lr/10 (rmsprop).
      opt/dspu4           double-stage update: activation parameters first, then the rest.
    """
    family = trial.suggest_categorical("act/family", tuple(INIT_AS))
    init = trial.suggest_categorical(f"act/init_as/{family}", INIT_AS[family])
    shape = suggest_shape(trial, "act/shape", SHAPES)
    name = trial.suggest_categorical("opt/name", tuple(LR))
    p24sl = family == "leaf" and trial.suggest_categorical("opt/p24sl", (True, False))
    dspu4 = trial.suggest_categorical("opt/dspu4", (True, False))
    optim = OptimConfig(name=name, lr=LR[name], p24sl=p24sl, dspu4=dspu4)
    return defaults.trial(plan=everywhere(family, init=init, shape=shape), optim=optim)


SPACE = SearchSpace(
    name="leaf_init",
    summary="LEAF/AHAF init-as presets, shape, adam/rmsprop, p24sl and dspu4",
    suggest=suggest,
    defaults=SpaceDefaults(model="lenet5", epochs=3),
    source="seed 003 (leaf-aaf)",
)
