"""``lslu_depth``: LSLU series length and placement in a VanillaNet, with the θ/ω init."""

from __future__ import annotations

import optuna

from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.spaces.common import suggest_adam, tagged_slots
from aaf_search.spaces.space import SearchSpace, SpaceDefaults, SpaceError

PLACEMENTS = ("stem", "stage_end", "all")
MAX_N = 4  # n = 3 is the original; each step widens the depthwise kernel to (2n+1)x(2n+1)
THETA_RANGE = (0.5, 1.5)  # around the original init θ = 1
OMEGA_RANGE = (-0.5, 0.5)  # around the original init ω = 0


def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """Seed 002 (LSLU, Feng et al. 2024): how long a series, where, and from which init.

    The placements are those the model has slots for: its ``stem`` slot and its ``stage_end`` slots
    (VanillaNet's ``stage1.act`` .. ``stage3.act``; a CIFAR ResNet's last ``act2`` of each stage). A
    torchvision model has a stem but no tagged stage ends, so it gets the stem placement only; a model
    with neither (the MLPs, lenet5, kerasnet) is refused in one line.

    Params:
      act/placement   stem (the ResNet-LSLU placement), stage_end (the end of every stage), or all
                      (stem and stage ends: the VanillaNet-LSLU placement); only those the model has.
      act/n/stem      series length n of the stem LSLU, 1..4 (when the stem gets one).
      act/n/stageK    series length n of the LSLU ending stage K = 1, 2, ..., 1..4 each (when stage
                      ends get one); the original uses one n everywhere, the search lets each differ.
      act/init        original (θ = 1, ω = 0: the element-wise part starts as ReLU) or sampled.
      act/theta_init  θ in [0.5, 1.5] (only when sampled).
      act/omega_init  ω in [-0.5, 0.5] (only when sampled).
      opt/lr          Adam learning rate, log-uniform in [1e-4, 1e-2].
    """
    stem, ends = tagged_slots(defaults, "stem"), tagged_slots(defaults, "stage_end")
    has = {"stem": bool(stem), "stage_end": bool(ends), "all": bool(stem and ends)}
    placements = tuple(p for p in PLACEMENTS if has[p])
    if not placements:
        raise SpaceError(
            f"space 'lslu_depth' places LSLU at the stem and stage ends, and model '{defaults.model}' has no "
            "slot tagged stem or stage_end; use vanillanet, a CIFAR ResNet (resnet8..resnet56, se_resnet32) "
            "or a torchvision model (tv:NAME)"
        )
    placement = trial.suggest_categorical("act/placement", placements)
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
        for stage, slot in enumerate(ends, start=1):
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
