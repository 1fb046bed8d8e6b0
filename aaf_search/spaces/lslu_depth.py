"""``lslu_depth``: LSLU series length and placement in a VanillaNet, with the θ/ω init."""

from __future__ import annotations

import optuna

from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.spaces.common import suggest_adam
from aaf_search.spaces.space import SearchSpace, SpaceDefaults

PLACEMENTS = ("stem", "stage_end", "all")
STAGE_SLOTS = ("stage1.act", "stage2.act", "stage3.act")  # VanillaNet's stage-end slots, one LSLU per stage
MAX_N = 4  # n = 3 is the original; each step widens the depthwise kernel to (2n+1)x(2n+1)
THETA_RANGE = (0.5, 1.5)  # around the original init θ = 1
OMEGA_RANGE = (-0.5, 0.5)  # around the original init ω = 0


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 002 (LSLU, Feng et al. 2024): how long a series, where, and from which init.

    Stage ends are VanillaNet's slots ``stage1.act`` .. ``stage3.act``; on a ResNet (``--model
    resnet20``) only the stem placement applies, as in the original ResNet-LSLU.

    Params:
      act/placement   stem (the ResNet-LSLU placement), stage_end (the end of every stage), or all
                      (stem and stage ends: the VanillaNet-LSLU placement).
      act/n/stem      series length n of the stem LSLU, 1..4 (when the stem gets one).
      act/n/stageK    series length n of the LSLU ending stage K = 1..3, 1..4 each (when stage ends
                      get one); the original uses one n everywhere, the search lets each stage differ.
      act/init        original (θ = 1, ω = 0: the element-wise part starts as ReLU) or sampled.
      act/theta_init  θ in [0.5, 1.5] (only when sampled).
      act/omega_init  ω in [-0.5, 0.5] (only when sampled).
      opt/lr          Adam learning rate, log-uniform in [1e-4, 1e-2].
    """
    placement = trial.suggest_categorical("act/placement", PLACEMENTS)
    if trial.suggest_categorical("act/init", ("original", "sampled")) == "original":
        init = {"theta": 1.0, "omega": 0.0}
    else:
        init = {
            "theta": trial.suggest_float("act/theta_init", *THETA_RANGE),
            "omega": trial.suggest_float("act/omega_init", *OMEGA_RANGE),
        }
    plan: list[PlanEntry] = []
    if placement in ("stem", "all"):
        n = trial.suggest_int("act/n/stem", 1, MAX_N)
        plan.append(PlanEntry("tag:stem", ActivationSpec("lslu", init=init, options={"n": n})))
    if placement in ("stage_end", "all"):
        for stage, slot in enumerate(STAGE_SLOTS, start=1):
            n = trial.suggest_int(f"act/n/stage{stage}", 1, MAX_N)
            plan.append(PlanEntry(slot, ActivationSpec("lslu", init=init, options={"n": n})))
    return defaults.trial(plan=tuple(plan), optim=suggest_adam(trial))


SPACE = SearchSpace(
    name="lslu_depth",
    summary="LSLU series length, placement (stem / stage ends / both) and θ/ω init",
    suggest=suggest,
    # VanillaNet stays at chance on digits with 3 epochs of batch 64; 5 epochs of batch 32 reach ~0.95.
    defaults=SpaceDefaults(model="vanillanet", epochs=5, batch_size=32),
    source="seed 002 (Learnable-series-linear-units-LSLU)",
)
