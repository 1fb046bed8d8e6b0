"""``apa_init``: APA in attention gates versus AGLU in layers, with the λ/κ init, shape and freezing."""

from __future__ import annotations

import optuna

from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.spaces.common import Shape, suggest_adam, suggest_shape, tagged_slots
from aaf_search.spaces.space import SearchSpace, SpaceDefaults

WHERE = ("gate", "layers", "both")
LAMBDA_RANGE = (0.05, 1.0)  # the original draws λ ~ U(0, 1); the code clamps λ at 1e-4
GATE_KAPPA_RANGE = (-1.0, 1.0)  # APA: U(-1, 0) in the code, U(0, 1) in the README
LAYER_KAPPA_RANGE = (0.5, 1.5)  # AGLU: U(0.8, 1.2), U(1, 1.3) or U(0, 1) depending on the file
SHAPES: tuple[Shape, ...] = ("layer", "channel")


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 004 (APA / AGLU, ECCV 2024): where the adaptive parametric activation helps, from which init.

    Params:
      act/where              gate (APA replaces the sigmoid of the attention gates), layers (AGLU in
                             every other slot, gates keep the sigmoid) or both (the original SE-ResNet-32);
                             layers only on a model without attention gates (slots tagged
                             attention_gate: se_resnet32, torchvision's SE networks).
      act/lambda_init        λ of APA/AGLU in [0.05, 1].
      act/gate/kappa_init    κ of the gate APA in [-1, 1] (when gates get APA).
      act/layer/kappa_init   κ of the layer AGLU in [0.5, 1.5] (when layers get AGLU).
      act/shape              layer (one (λ, κ) pair per slot, the original) or channel.
      act/trainable          learn λ and κ (the original) or keep them frozen at their init.
      opt/lr                 Adam learning rate, log-uniform in [1e-4, 1e-2].
    """
    gates = bool(tagged_slots(defaults, "attention_gate"))
    # Without gates a gate placement has no slot to go to: its trial would fail, and stop the search.
    where = trial.suggest_categorical("act/where", WHERE if gates else ("layers",))
    lam = trial.suggest_float("act/lambda_init", *LAMBDA_RANGE)
    shape = suggest_shape(trial, "act/shape", SHAPES)
    trainable = trial.suggest_categorical("act/trainable", (True, False))
    plan: list[PlanEntry] = []
    if where in ("layers", "both"):
        kappa = trial.suggest_float("act/layer/kappa_init", *LAYER_KAPPA_RANGE)
        aglu = ActivationSpec("aglu", init={"lambda": lam, "kappa": kappa}, shape=shape, trainable=trainable)
        plan.append(PlanEntry("all", aglu))
    if where in ("gate", "both"):
        kappa = trial.suggest_float("act/gate/kappa_init", *GATE_KAPPA_RANGE)
        gate = ActivationSpec("apa", init={"lambda": lam, "kappa": kappa}, shape=shape, trainable=trainable)
    else:
        # "all" above also matched the gates; a gate must stay bounded, so it gets its sigmoid back.
        gate = ActivationSpec("sigmoid")
    if gates:
        plan.append(PlanEntry("tag:attention_gate", gate))
    return defaults.trial(plan=tuple(plan), optim=suggest_adam(trial))


SPACE = SearchSpace(
    name="apa_init",
    summary="APA in attention gates vs AGLU in layers; λ/κ init, shape, learnable or frozen",
    suggest=suggest,
    defaults=SpaceDefaults(model="se_resnet32", epochs=3),
    source="seed 004 (AGLU / APA)",
)
