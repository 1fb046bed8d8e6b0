"""Check, before the storage is opened, what a trial would only find out while training.

The space resolves and the settings parse long before the first trial, but a wrong model name, data set,
activation family or preset, or a data root without the files, would otherwise surface inside trial 0:
after the study was created, with a FAIL trial in it. :func:`check_space` samples the space in a
throw-away in-memory study until every value of every categorical parameter was drawn (a typo in the
second of two choices is found as surely as one in the first), and checks every name in each sample
against the registries, the data files on disk, and the plan's selectors against the model's slots,
without training or reading a file: each model is built once, untrained, to see its slots.
"""

from __future__ import annotations

import optuna
import torch
from optuna.distributions import BaseDistribution

from aaf_search import activations
from aaf_search.activations.registry import preset_values
from aaf_search.config import TrialConfig
from aaf_search.errors import UserError
from aaf_search.search.ray_backend import cluster_address
from aaf_search.search.settings import Resources
from aaf_search.spaces import SearchSpace, SpaceDefaults
from aaf_search.spaces.probe import every_choice
from aaf_search.spaces.resolve import sample_once
from aaf_search.trials.data import check_data_files
from aaf_search.trials.models import model_info
from aaf_search.trials.plan import PlanError, dataset_slots, resolve_plan


def check_space(space: SearchSpace, defaults: SpaceDefaults) -> dict[str, BaseDistribution]:
    """Raise the :class:`UserError` any trial would raise for a name or a data file; write nothing.

    Continuous parameters are drawn at random: they set numbers, whose ranges the config checks when
    it is built, never names. Returns the distribution of every parameter the probes met, for
    :func:`~aaf_search.search.study.check_same_distributions`.
    """
    distributions: dict[str, BaseDistribution] = {}

    def probe(trial: optuna.Trial) -> TrialConfig:
        config = sample_once(space, trial, defaults)
        distributions.update(trial.distributions)
        return config

    for config in every_choice(probe):
        check_trial(config)
    return distributions


def check_trial(config: TrialConfig) -> None:
    """Every name ``config`` resolves through a registry, the data set's files, and that each of the
    plan's selectors matches a slot of the model."""
    model_info(config.model)
    check_data_files(config.data)
    activations.get(config.base_activation)
    if config.plan:
        try:
            resolve_plan(config.plan, dataset_slots(config.model, config.data.name))
        except PlanError as exc:
            raise PlanError(f"model '{config.model}': {exc}") from None
    for entry in config.plan:
        spec = entry.activation
        family = activations.get(spec.family)
        where = f"plan entry '{entry.select}'"
        try:
            preset_values(family, spec.init)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        if spec.shape not in family.shapes:
            raise UserError(
                f"{where}: activation '{family.family}' does not support shape '{spec.shape}'; "
                f"it supports: {', '.join(family.shapes)}"
            )
        unknown = sorted(set(spec.options) - set(family.option_names))
        if unknown:
            valid = ", ".join(family.option_names) or "none"
            options = ", ".join(unknown)
            raise UserError(f"{where}: activation '{family.family}' has no option {options}; its options: {valid}")


def check_precision(precision: str, backend: str, resources: Resources) -> None:
    """fp16 trains on CUDA only: refuse it where no trial could get a GPU.

    With a Ray cluster's address (``--address`` or ``RAY_ADDRESS``, as the Ray backend resolves them) the
    GPUs may be on other machines (the trials find out); a Ray trial given no GPU share
    (``--gpus-per-trial 0``) sees none even on a machine that has them. The local backend trains here.
    """
    if precision != "fp16":
        return
    if backend == "ray" and resources.gpus_per_trial == 0:
        raise UserError(
            "precision fp16 needs a GPU in every trial and --gpus-per-trial 0 gives Ray trials none; "
            "give each trial a GPU share (e.g. --gpus-per-trial 0.5) or choose bf16 or fp32"
        )
    remote = backend == "ray" and cluster_address(resources.address) is not None
    if not remote and not torch.cuda.is_available():
        raise UserError("precision fp16 needs a CUDA GPU and this machine has none; choose bf16 or fp32")
