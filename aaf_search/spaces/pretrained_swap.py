"""``pretrained_swap``: seed 001's experiment as a search: swap activations in a trained model."""

from __future__ import annotations

import optuna

from aaf_search.config import OptimConfig, PretrainConfig, TrialConfig
from aaf_search.spaces.common import Shape, everywhere, suggest_shape, tagged_slots
from aaf_search.spaces.space import SearchSpace, SpaceDefaults

BASES = ("relu", "silu")
INITS = {
    "ahaf": ("as_relu", "as_silu"),
    "leaf": ("as_relu", "as_silu", "as_tanh"),
    "fneuron": ("tanh", "random", "ramp"),
}
SHAPES: tuple[Shape, ...] = ("layer", "neuron")  # "_shared" (aaf_identification) or per-neuron (af_replacement)
FINETUNE_LR = 1e-3  # Adam, as the seed's fine-tuning stage


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 001 (af_replacement, aaf_identification): train a base model once, swap, fine-tune AAFs only.

    The base model (its base activation, no plan) is trained for the same epoch budget and cached by
    config hash; the swapped model then trains only its activation parameters. The objective is the
    accuracy after fine-tuning; the base and patched accuracies are stored for comparison.

    Params:
      act/base               relu or silu: the activation the base model is trained with.
      act/family             ahaf, leaf (every slot) or fneuron (fully connected slots only, so only
                             on a model that has some: not a CIFAR ResNet or VanillaNet).
      act/init/<family>      ahaf: as_relu, as_silu; leaf: as_relu, as_silu, as_tanh;
                             fneuron: tanh, random, ramp.
      act/shape              layer (the "_shared" variants) or neuron (one set per neuron).
    """
    base = trial.suggest_categorical("act/base", BASES)
    # F-neuron goes into fully connected slots only: a model without any has no slot for it.
    families = tuple(f for f in INITS if f != "fneuron" or tagged_slots(defaults, "fc"))
    family = trial.suggest_categorical("act/family", families)
    init = trial.suggest_categorical(f"act/init/{family}", INITS[family])
    shape = suggest_shape(trial, "act/shape", SHAPES)
    select = "tag:fc" if family == "fneuron" else "all"
    pretrain = PretrainConfig(epochs=defaults.epochs, optim=OptimConfig(name="adam", lr=1e-3), finetune="activations")
    # p24sl keeps LEAF's p2/p4 from drifting, as every LEAF run of the seed does.
    optim = OptimConfig(name="adam", lr=FINETUNE_LR, p24sl=family == "leaf")
    plan = everywhere(family, select=select, init=init, shape=shape)
    return defaults.trial(base_activation=base, plan=plan, optim=optim, pretrain=pretrain)


SPACE = SearchSpace(
    name="pretrained_swap",
    summary="train a ReLU/SiLU model once, swap in AHAF/LEAF/F-neuron, fine-tune activations only",
    suggest=suggest,
    defaults=SpaceDefaults(model="kerasnet", epochs=3),
    source="seed 001 (af_replacement, aaf_identification)",
)
