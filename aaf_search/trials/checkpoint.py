"""Carry a long training run on where it stopped: its whole state after an epoch, in its run directory.

``aaf-search train`` of a 200-epoch winner killed at epoch 150 (Ctrl-C, a preempted GPU node, a full
disk) starts again after the last epoch it saved when the same command runs again, and ends with the
numbers the uninterrupted run would have reached; so do a search's trials retried with
``--retry-failed`` and ``robust``'s seed runs. The checkpoint holds the weights, every optimiser's and
scheduler's state, the loss scaler, the shuffling generator and torch's random state (dropout), the
epochs reported so far and the best epoch's weights. It is written atomically (complete or absent, never
half a file) as often as costs at most 2 % of the training time (:meth:`Checkpoint.save_if_due`), and
deleted once the run's ``model.pt`` and metrics are written (or as soon as the run ends another way:
pruned, diverged, failed).

A checkpoint belongs to one config (its digest): one left by another config in the directory is not
resumed, and the new run's first save replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aaf_search.atomic import leftover_temporaries, save_torch_atomically
from aaf_search.errors import UserError
from aaf_search.trials.optim import Optimisers
from aaf_search.trials.report import EpochReport

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1  # bumped when the content changes; a checkpoint of another format is not resumed
SAVE_TIME_SHARE = 0.02  # of the training time, at most, spent saving checkpoints
# The first save's cost, estimated before it from what it writes, on the fast side of what was measured
# (2-core CPU: 2.5-6 ms for DNN3's 10 weight tensors, 23-25 ms for ResNet-20's 154, 34-82 ms for
# SE-ResNet-32's 370, 0.54 s for 400 MB in 4 tensors): torch.save's own work, a cost per tensor it writes,
# and the bytes at 1 GB/s.
SAVE_FIXED_SECONDS = 0.002
SAVE_SECONDS_PER_TENSOR = 25e-6
SAVE_BYTES_PER_SECOND = 1e9
SAVED_COPIES = 4  # of each weight tensor: the weights, the best epoch's, and Adam's two moments


@dataclass
class FitProgress:
    """Where a run stands after its last epoch: what :func:`~aaf_search.trials.loop.fit` carries on from."""

    history: list[EpochReport] = field(default_factory=list)
    best_accuracy: float = -1.0
    best_loss: float = float("inf")
    best_epoch: int = 0
    stale: int = 0  # epochs since the best one, for early stopping

    @property
    def epochs_done(self) -> int:
        return len(self.history)


@dataclass(frozen=True)
class TrainingState:
    """The objects a run's state lives in, besides its :class:`FitProgress`."""

    model: nn.Module
    optimisers: Optimisers
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    best_state: dict[str, Tensor]


@dataclass
class Checkpoint:
    """The checkpoint file of one run: ``path``, for the config whose digest is ``key``."""

    path: Path
    key: str
    # time.monotonic() from which the next save is due (None: no save yet, see save_if_due)
    _due: float | None = field(default=None, init=False, repr=False)

    @classmethod
    def in_run_dir(cls, run_dir: Path | str, key: str) -> Checkpoint:
        return cls(Path(run_dir) / CHECKPOINT_FILE, key)

    def epochs_done(self) -> int:
        """Epochs the checkpoint holds for this config (0: none, or another config's).

        Reads only the small entries: the tensors are mapped, not loaded.
        """
        saved = self._read(mmap=True)
        return 0 if saved is None else int(saved["epoch"])

    def save_if_due(self, state: TrainingState, progress: FitProgress) -> None:
        """:meth:`save` once the run has trained 50 times what the save takes (2 % of the time).

        Why: a save writes the weights, the best weights and the optimiser's moments (ResNet-20: 23 ms;
        a 25M-parameter network: about half a second), which for short epochs would be a large part of
        each. The first save waits until the epochs trained (this session's and those carried on) add up
        to 50 times its cost estimated from its size (:func:`estimated_save_seconds`): a search trial of a
        tenth of a second saves none; every later one until 50 times what the last save took has passed.
        A killed run loses at most the epochs since the last save (the resumed numbers are the same
        whichever epoch it resumes from).
        """
        started = time.monotonic()
        if self._due is None:
            trained = sum(report.epoch_seconds for report in progress.history)
            if trained < estimated_save_seconds(state) / SAVE_TIME_SHARE:
                return
        elif started < self._due:
            return
        self.save(state, progress)
        self._due = started + (time.monotonic() - started) / SAVE_TIME_SHARE

    def save(self, state: TrainingState, progress: FitProgress) -> None:
        device = _device(state)
        content = {
            "format": FORMAT,
            "key": self.key,
            "epoch": progress.epochs_done,
            "model": state.model.state_dict(),
            "optimisers": [optimiser.state_dict() for optimiser in state.optimisers.all()],
            "schedulers": [scheduler.state_dict() for scheduler in state.optimisers.schedulers],
            "scaler": state.scaler.state_dict(),
            "generator": state.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "history": [dataclasses.asdict(report) for report in progress.history],
            "best": {
                "accuracy": progress.best_accuracy,
                "loss": progress.best_loss,
                "epoch": progress.best_epoch,
                "stale": progress.stale,
            },
            # The best epoch's weights are the model's when the last epoch was the best: stored once then.
            "best_state": None if progress.best_epoch == progress.epochs_done else state.best_state,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_torch_atomically(self.path, content)

    def restore(self, state: TrainingState, progress: FitProgress) -> None:
        """Put the checkpoint's state into ``state`` and ``progress``; leave both alone when there is none."""
        saved = self._read(mmap=False)
        if saved is None:
            return
        state.model.load_state_dict(saved["model"])
        for optimiser, optimiser_state in zip(state.optimisers.all(), saved["optimisers"], strict=True):
            optimiser.load_state_dict(optimiser_state)
        for scheduler, scheduler_state in zip(state.optimisers.schedulers, saved["schedulers"], strict=True):
            scheduler.load_state_dict(scheduler_state)
        state.scaler.load_state_dict(saved["scaler"])
        state.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], _device(state))
        best_state = saved["model"] if saved["best_state"] is None else saved["best_state"]
        for key, value in best_state.items():
            state.best_state[key].copy_(value)
        best = saved["best"]
        progress.history[:] = [EpochReport(**report) for report in saved["history"]]
        progress.best_accuracy, progress.best_loss = float(best["accuracy"]), float(best["loss"])
        progress.best_epoch, progress.stale = int(best["epoch"]), int(best["stale"])

    def remove(self) -> None:
        remove_checkpoint(self.path.parent)

    def _read(self, *, mmap: bool) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            # On the CPU: the random states must be CPU tensors, and loading copies the rest where it belongs.
            saved: Any = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
            raise UserError(
                f"checkpoint '{self.path}' cannot be read ({type(exc).__name__}); delete it to train from the start"
            ) from exc
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("key") != self.key:
            return None  # another config's (or another version's): the run starts over and replaces it
        return saved


def remove_checkpoint(run_dir: Path) -> None:
    """Delete the checkpoint in ``run_dir`` (and any half-written one a killed run left), and the directory
    if that leaves it empty (the run directory of a pruned or failed search trial holds nothing else: it
    would stay behind as an empty directory)."""
    checkpoint = run_dir / CHECKPOINT_FILE
    for path in (checkpoint, *leftover_temporaries(checkpoint)):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty (the run's weights, a user's files), or already gone
        run_dir.rmdir()


def estimated_save_seconds(state: TrainingState) -> float:
    """What the first :meth:`Checkpoint.save` should take, from the tensors and bytes it writes (see above)."""
    tensors = state.model.state_dict().values()
    weight_bytes = sum(tensor.numel() * tensor.element_size() for tensor in tensors)
    per_copy = len(tensors) * SAVE_SECONDS_PER_TENSOR + weight_bytes / SAVE_BYTES_PER_SECOND
    return SAVE_FIXED_SECONDS + SAVED_COPIES * per_copy


def adopt_checkpoint(run_dir: Path, key: str, earlier: Iterable[Path]) -> int:
    """Move into ``run_dir`` the checkpoint of config ``key`` that one of the ``earlier`` run directories
    holds (an interrupted run of the same config), so that a run there carries on from it; return the
    epochs it holds (0: none found).

    Only directories of runs that are over belong in ``earlier``: a live run's checkpoint is its own.
    One that cannot be read is left where it is: the run trains from the start rather than stop a search.
    """
    target = Checkpoint.in_run_dir(run_dir, key)
    for directory in earlier:
        found = Checkpoint.in_run_dir(directory, key)
        if found.path == target.path or not found.path.is_file():
            continue
        try:
            epochs = found.epochs_done()
        except UserError:
            continue
        if epochs:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            found.path.replace(target.path)
            remove_checkpoint(directory)  # the directory it leaves empty
            return epochs
    return 0


def _device(state: TrainingState) -> torch.device:
    return next(state.model.parameters(), torch.empty(0)).device
