"""Run one trial: build the data, the model and its activation plan from a config, train, report.

This is plain PyTorch with no Optuna or Ray inside; search backends call :func:`run_trial` with an
``on_epoch`` callback that reports to their pruner.
"""

from __future__ import annotations

import csv
import pickle
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aaf_search.activations import fused
from aaf_search.atomic import save_torch_atomically, write_atomically
from aaf_search.config import PretrainConfig, TrialConfig, load_yaml, save_yaml
from aaf_search.errors import UserError
from aaf_search.trials.checkpoint import CHECKPOINT_FILE, Checkpoint
from aaf_search.trials.data import DataSplits, load_data
from aaf_search.trials.loop import EpochCallback, FitSettings, evaluate, fit
from aaf_search.trials.models import build_model, model_info
from aaf_search.trials.plan import activation_parameters, apply_plan, freeze_all_but_activations
from aaf_search.trials.report import EpochReport, TrialResult


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_trial_model(config: TrialConfig, data: DataSplits, device: torch.device) -> nn.Module:
    """The model with its base activation, on ``device`` (before the plan is applied)."""
    return build_model(
        config.model,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        base_activation=config.base_activation,
    ).to(device)


def pretrained_state(config: TrialConfig, pretrain: PretrainConfig, data: DataSplits) -> dict[str, torch.Tensor]:
    """Weights of the base model (base activation, no plan), trained once and cached by config hash.

    The cache key holds everything that changes the base weights, so every trial of a search that
    shares them trains the base model once. The file is written atomically and read back with
    ``weights_only=True``.
    """
    base = config.replace(plan=(), pretrain=None, epochs=pretrain.epochs, optim=pretrain.optim, seed=pretrain.seed)
    path = Path(pretrain.cache_dir) / f"{config.model}-{config.base_activation}-{base.digest()}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location=data.train_x.device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            # weights_only refuses anything but tensors and plain containers: a file that needs more (or a
            # truncated one) is not what this cache writes, and it is never unpickled in full.
            raise UserError(
                f"cached pre-trained weights '{path}' cannot be loaded as plain tensors "
                f"({type(exc).__name__}); delete the file to train the base model again"
            ) from exc
    seed_everything(pretrain.seed)
    model = build_trial_model(base, data, data.train_x.device)
    settings = FitSettings(pretrain.optim, pretrain.epochs, config.batch_size, pretrain.seed, config.precision)
    _, state = fit(model, data, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomically(path, state)
    return state


def run_trial(
    config: TrialConfig,
    *,
    on_epoch: EpochCallback | None = None,
    out_dir: Path | str | None = None,
    resumable: bool = False,
) -> TrialResult:
    """Train ``config`` and return its result; the same config and seed give the same numbers on CPU.

    ``resumable`` (with ``out_dir``): save the run's state there as it goes, and carry on from
    the state found there (:mod:`aaf_search.trials.checkpoint`); a run interrupted by Ctrl-C or a kill,
    called again, ends with the numbers of an uninterrupted one (so does one stopped by an ``OSError``,
    a full disk, once it is mended). A run that completes, or that an exception ends (a pruner's, a
    divergence, an error), leaves no checkpoint.
    """
    checkpoint = None
    if resumable:
        if out_dir is None:
            raise ValueError("run_trial: resumable needs an out_dir to keep its checkpoint in")
        checkpoint = Checkpoint.in_run_dir(out_dir, config.digest())
    started = time.perf_counter()
    device = resolve_device(config.device)
    info = model_info(config.model)
    data = load_data(config.data, device=device, min_size=info.min_input_size)
    extra: dict[str, float] = {}
    base_state = pretrained_state(config, config.pretrain, data) if config.pretrain is not None else None

    def load_base(model: nn.Module) -> None:
        if base_state is not None:
            model.load_state_dict(base_state)
            extra["base_val_accuracy"] = evaluate(model, data.val_x, data.val_y)[1]
            extra["base_test_accuracy"] = evaluate(model, data.test_x, data.test_y)[1]

    model = initial_model(config, data, device, before_plan=load_base)
    if config.pretrain is not None:
        extra["patched_val_accuracy"] = evaluate(model, data.val_x, data.val_y)[1]
        if config.pretrain.finetune == "activations" and not freeze_all_but_activations(model):
            raise UserError("fine-tuning activations only, but the plan puts no trainable activation in the model")
    settings = FitSettings(
        optim=config.optim,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        precision=config.precision,
        augment=config.data.augment,
        early_stop_patience=config.early_stop_patience,
    )
    try:
        outcome, best_state = fit(model, data, settings, on_epoch, checkpoint)
    except Exception as exc:
        # Pruned (the local backend's exception from on_epoch), diverged or failed: a rerun would end the
        # same way, and a checkpoint left in each such trial's directory would fill the disk. An OSError (a
        # full disk, a lost mount) keeps it, as does what is no Exception: Ctrl-C, and the SystemExit with
        # which Ray stops a worker, whether its trial was pruned or its search interrupted (the driver,
        # which knows which, removes a pruned trial's).
        if checkpoint is not None and not isinstance(exc, OSError):
            checkpoint.remove()
        raise
    model.load_state_dict(best_state)
    _, test_acc = evaluate(model, data.test_x, data.test_y, config.precision)
    result = TrialResult(
        val_accuracy=outcome.best_val_accuracy,
        val_loss=outcome.best_val_loss,
        test_accuracy=test_acc,
        best_epoch=outcome.best_epoch,
        epochs_run=len(outcome.history),
        param_count=sum(p.numel() for p in model.parameters()),
        activation_param_count=sum(p.numel() for p in activation_parameters(model)),
        device=str(device),
        # A resumed run's time includes its earlier sessions' epochs (not what they lost to the interruption).
        seconds=time.perf_counter() - started + sum(r.epoch_seconds for r in outcome.history[: outcome.resumed_epochs]),
        stopped_early=outcome.stopped_early,
        history=outcome.history,
        extra=extra,
        cpu_threads=torch.get_num_threads() if device.type == "cpu" else None,
        fused_activations=fused.trained_families(model),
    )
    if out_dir is not None:
        save_run(Path(out_dir), config, model, result)
    if checkpoint is not None:
        checkpoint.remove()  # the run is complete in model.pt and metrics.csv
    return result


@dataclass(frozen=True)
class TrainedRun:
    """A saved run rebuilt: the model with its weights (in eval mode), its config, and its data splits."""

    model: nn.Module
    config: TrialConfig
    data: DataSplits
    saved: dict[str, Any]  # what the run recorded beside its config: val_accuracy, test_accuracy, best_epoch


def initial_model(
    config: TrialConfig,
    data: DataSplits,
    device: torch.device,
    *,
    before_plan: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """The model as ``config``'s run started training it: built and planned from the config's seed, so
    random inits come out as in :func:`run_trial`, which builds it here too. ``before_plan`` sees the
    model before the plan puts its activations in (``run_trial`` loads a pre-trained base there)."""
    seed_everything(config.seed)
    model = build_trial_model(config, data, device)
    if before_plan is not None:
        before_plan(model)
    apply_plan(model, config.plan, data.train_x[:2])
    return model


def load_run(run_dir: str | Path, *, device: str = "cpu") -> TrainedRun:
    """The model a run directory holds (``train``'s, or a search trial's ``trials/NNNN``), ready to use.

    The model is rebuilt from ``config.yaml`` as the run built it (its data set fixes the input shape and
    the classes, the plan puts its activations in), then ``model.pt``'s weights are loaded as plain
    tensors (``weights_only``). The data splits are the run's own, so that ``evaluate(run.model,
    run.data.test_x, run.data.test_y)`` gives the test accuracy the run reported.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        if (run_dir / CHECKPOINT_FILE).is_file():
            raise UserError(
                f"'{run_dir}' holds an interrupted run ({CHECKPOINT_FILE}, no weights yet); the command that "
                "started it, run again, carries it on to the end"
            )
        what = "does not exist" if not run_dir.exists() else "is not a run directory (it has no config.yaml)"
        raise UserError(f"'{run_dir}' {what}; runs are written by aaf-search train and, per trial, by a search")
    config, saved = load_yaml(run_dir / "config.yaml")
    weights = run_dir / "model.pt"
    if not weights.is_file():
        raise UserError(f"run directory '{run_dir}' has a config.yaml but no model.pt: the run did not finish")
    target = resolve_device(device)
    data = load_data(config.data, device=target, min_size=model_info(config.model).min_input_size)
    model = initial_model(config, data, target)
    try:
        state = torch.load(weights, map_location=target, weights_only=True)
        model.load_state_dict(state)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"'{weights}' does not hold this run's weights: {reason}") from exc
    return TrainedRun(model=model.eval(), config=config, data=data, saved=saved)


METRIC_FIELDS = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr", "epoch_seconds")


def save_run(out_dir: Path, config: TrialConfig, model: nn.Module, result: TrialResult) -> None:
    """Write the weights, the resolved config and one metrics row per epoch into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_torch_atomically(out_dir / "model.pt", model.state_dict())
    save_yaml(
        out_dir / "config.yaml",
        config,
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        best_epoch=result.best_epoch,
    )

    def write_metrics(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([*METRIC_FIELDS, "activation_params"])
            for report in result.history:
                writer.writerow([*(_field(report, f) for f in METRIC_FIELDS), _compact(report)])

    write_atomically(out_dir / "metrics.csv", write_metrics)


def _field(report: EpochReport, name: str) -> object:
    value = getattr(report, name)
    return f"{value:.6g}" if isinstance(value, float) else value


def _compact(report: EpochReport) -> str:
    """``slot:param=mean`` pairs, enough to plot parameter trajectories from the CSV alone."""
    return ";".join(
        f"{slot}:{param}={stats['mean']:.6g}"
        for slot, params in report.activation_params.items()
        for param, stats in params.items()
    )
