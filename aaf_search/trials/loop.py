"""The training loop: one straight loop over epochs, read top to bottom.

Data are in-memory tensors (see :mod:`aaf_search.trials.data`), so an epoch is a permutation and a
sequence of slices; there is no DataLoader. Each epoch ends with a validation pass and one
:class:`~aaf_search.trials.report.EpochReport` handed to ``on_epoch``; an exception raised there (a
pruner's, say) ends the run.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search.activations import fused
from aaf_search.config import OptimConfig
from aaf_search.errors import UserError
from aaf_search.trials.checkpoint import Checkpoint, FitProgress, TrainingState
from aaf_search.trials.data import DataSplits, iterate_batches
from aaf_search.trials.malloc import tune_malloc
from aaf_search.trials.optim import Optimisers, build_optimisers
from aaf_search.trials.plan import activation_parameters, summarize_activation_params
from aaf_search.trials.prefault import prefault_torch
from aaf_search.trials.report import EpochReport, TrialDiverged

EVAL_BATCH = 1024  # samples per evaluation batch; evaluation keeps no graph, so larger is cheaper

EpochCallback = Callable[[EpochReport], None]


@dataclass(frozen=True)
class FitSettings:
    """The knobs of one call to :func:`fit` (a trial's, or the pre-training of seed 001's base)."""

    optim: OptimConfig
    epochs: int
    batch_size: int
    seed: int
    precision: str = "fp32"
    augment: bool = False
    early_stop_patience: int | None = None


@dataclass(frozen=True)
class FitOutcome:
    history: tuple[EpochReport, ...]
    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float
    stopped_early: bool
    resumed_epochs: int = 0  # of ``history``, the first ones, which a checkpoint held


def autocast_context(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """bf16/fp16 autocast where asked; fp16 needs CUDA (CPU has no fast fp16 path)."""
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise UserError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, precision: str = "fp32") -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``x, y`` in eval mode."""
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        with autocast_context(x.device, precision):
            logits = model(xb)
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
        correct += (logits.argmax(dim=1) == yb).sum()
    n = max(1, len(x))
    loss, right = torch.stack([loss_sum.double(), correct.double()]).tolist()  # one device-to-host copy
    return loss / n, right / n


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16, a no-op otherwise.

    fp16's narrow range flushes small gradients to zero: the scaler multiplies the loss before backward,
    divides the gradients before the step, and skips a step whose gradients overflowed (lowering the
    scale). bf16 has fp32's range and needs none.
    """
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def _train_step(
    model: nn.Module, xb: Tensor, yb: Tensor, opts: Optimisers, settings: FitSettings, scaler: torch.amp.GradScaler
) -> Tensor:
    """One mini-batch; with dspu4 two passes: activation parameters first, then the rest."""
    device = xb.device
    smoothing = settings.optim.label_smoothing
    if opts.act is None:
        opts.main.zero_grad(set_to_none=True)
        with autocast_context(device, settings.precision):
            loss = F.cross_entropy(model(xb).float(), yb, label_smoothing=smoothing)
        scaler.scale(loss).backward()
        scaler.step(opts.main)
        scaler.update()
        return loss.detach()
    # Double-stage parameter update (seed 003, "2SPU-4"): freeze the network while the activations
    # learn, then freeze the activations while the network learns, on the same mini-batch.
    act_params = {id(p) for g in opts.act.param_groups for p in g["params"]}
    all_params = [p for g in opts.main.param_groups + opts.act.param_groups for p in g["params"]]
    loss = torch.zeros((), device=device)
    for opt, active in ((opts.act, True), (opts.main, False)):
        for p in all_params:
            p.requires_grad_((id(p) in act_params) == active)
        opt.zero_grad(set_to_none=True)
        with autocast_context(device, settings.precision):
            loss = F.cross_entropy(model(xb).float(), yb, label_smoothing=smoothing)
        scaler.scale(loss).backward()
        scaler.step(opt)
    scaler.update()  # once per step, after both optimisers (GradScaler's rule for several)
    for p in all_params:
        p.requires_grad_(True)
    return loss.detach()


def _check_finite(model: nn.Module, train_loss: float, epoch: int) -> None:
    if not math.isfinite(train_loss):
        raise TrialDiverged(epoch, f"training loss is {train_loss}")
    named = list(model.named_parameters())
    if _all_finite([param for _, param in named]):
        return
    # Which one, only on the way out: an activation parameter (they are among the model's), else by name.
    if not _all_finite(list(activation_parameters(model))):
        raise TrialDiverged(epoch, "an activation parameter is not finite")
    name = next(name for name, param in named if not bool(torch.isfinite(param).all()))
    raise TrialDiverged(epoch, f"parameter '{name}' is not finite")


def _all_finite(tensors: list[Tensor]) -> bool:
    """Whether every element of ``tensors`` is finite, in one pass and one host sync.

    max |x| per tensor in one foreach call: a NaN propagates through max and an infinity is its own max,
    and no per-tensor boolean mask is allocated.
    """
    if not tensors:
        return True
    peaks = torch._foreach_norm([t.detach() for t in tensors], ord=math.inf)
    return bool(torch.isfinite(torch.stack(peaks)).all())


def drops_last_batch(samples: int, batch_size: int) -> bool:
    """Whether an epoch skips its last batch: one sample alone would break batch norm in training mode."""
    return samples % batch_size == 1


def planned_steps(samples: int, settings: FitSettings, opts: Optimisers) -> int:
    """Forward and backward passes of a run that trains all its epochs (2SPU-4 makes two per batch)."""
    batches = math.ceil(samples / settings.batch_size) - drops_last_batch(samples, settings.batch_size)
    return settings.epochs * batches * (1 if opts.act is None else 2)


def use_channels_last(model: nn.Module, data: DataSplits) -> None:
    """On CPU, put a network trained on images into channels-last memory format (in place).

    Why: oneDNN's CPU convolutions run faster on (N, H, W, C) strides, and a convolution whose weight is
    channels-last hands its output on in the same format, so the whole network follows. On the 2-core
    development machine the 4-conv network of ``benchmarks/activations.py`` stepped 1.25x faster, and
    LSLU's depthwise convolution 5x faster (NCHW input made some of its shapes take seconds per step).
    Parameters keep their values (only their strides change). Networks without 4-D weights (MLPs) are
    untouched, and so are CUDA runs, where the format has not been measured yet.
    """
    if data.train_x.dim() == 4 and data.train_x.device.type == "cpu":
        model.to(memory_format=torch.channels_last)


def fit(
    model: nn.Module,
    data: DataSplits,
    settings: FitSettings,
    on_epoch: EpochCallback | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[FitOutcome, dict[str, Tensor]]:
    """Train ``model`` on ``data.train`` and validate on ``data.val`` after every epoch.

    Returns the outcome and the state dict of the best validation epoch (the model is left with the
    weights of the last epoch run). Raises :class:`TrialDiverged` on a non-finite loss or parameter.
    With ``checkpoint``, the run carries on from the epochs it holds, and saves its state there as it
    goes. ``on_epoch`` sees every epoch of the run: those a checkpoint holds first, at once, so that
    what it records (a pruner's intermediate values, a trial's history) is the uninterrupted run's.
    """
    device = data.train_x.device
    tune_malloc()
    prefault_torch()
    use_channels_last(model, data)
    opts = build_optimisers(model, settings.optim, settings.epochs)
    scaler = grad_scaler(device, settings.precision)
    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    augment = data.augmenter(generator) if settings.augment else None
    # The best epoch's weights, copied into buffers allocated once rather than a new copy per improvement.
    # A deep copy keeps the state dict's per-module versions, which some modules' loading reads (MNASNet).
    best_state: dict[str, Tensor] = copy.deepcopy(model.state_dict())
    state = TrainingState(model, opts, scaler, generator, best_state)
    progress = FitProgress()
    if checkpoint is not None:
        checkpoint.restore(state, progress)
    history = progress.history
    resumed_epochs = progress.epochs_done
    if on_epoch is not None:
        for report in tuple(history):
            on_epoch(report)
    stopped_early = False
    # Fused kernels only where their compilation pays off over this run (see fused.trial_plan).
    with fused.trial_plan(model, data.train_x[: settings.batch_size], planned_steps(len(data.train_x), settings, opts)):
        for epoch in range(progress.epochs_done + 1, settings.epochs + 1):
            if settings.early_stop_patience is not None and progress.stale >= settings.early_stop_patience:
                stopped_early = True
                break
            started = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            batches = 0
            for xb, yb in iterate_batches(
                data.train_x,
                data.train_y,
                settings.batch_size,
                shuffle=True,
                generator=generator,
                augment=augment,
                drop_last=drops_last_batch(len(data.train_x), settings.batch_size),
            ):
                loss_sum += _train_step(model, xb, yb, opts, settings, scaler)
                batches += 1
            lr = opts.lr()
            opts.step_schedules()
            train_loss = float(loss_sum) / max(1, batches)
            _check_finite(model, train_loss, epoch)
            val_loss, val_acc = evaluate(model, data.val_x, data.val_y, settings.precision)
            report = EpochReport(
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val_loss,
                val_accuracy=val_acc,
                epoch_seconds=time.perf_counter() - started,
                lr=lr,
                activation_params=summarize_activation_params(model),
            )
            history.append(report)
            if val_acc > progress.best_accuracy:
                progress.best_accuracy, progress.best_loss, progress.best_epoch = val_acc, val_loss, epoch
                progress.stale = 0
                for key, value in model.state_dict().items():
                    best_state[key].copy_(value)
            else:
                progress.stale += 1
            if checkpoint is not None and epoch < settings.epochs:  # after the last, the run is written whole
                checkpoint.save_if_due(state, progress)
            if on_epoch is not None:
                on_epoch(report)
    best_accuracy = max(progress.best_accuracy, 0.0)
    outcome = FitOutcome(
        tuple(history), progress.best_epoch, best_accuracy, progress.best_loss, stopped_early, resumed_epochs
    )
    return outcome, best_state
