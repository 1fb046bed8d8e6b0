"""What a trial reports: one record per epoch and one result at the end.

These are plain data so that search backends can forward them across processes and store them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict


class _ParamRange(TypedDict):
    mean: float
    min: float
    max: float


class ParamStats(_ParamRange, total=False):
    """One learned activation parameter: ``mean``, ``min``, ``max`` of its values, and ``values``, the values
    themselves in order, when the parameter is one small vector (LinComb's w, LSLU's θ/ω, F-neuron's
    weights at shape ``network`` or ``layer``), so that the learned shape can be redrawn exactly."""

    values: list[float]


ParamSummary = dict[str, dict[str, ParamStats]]
"""slot name -> parameter name -> :class:`ParamStats` of the learned activation parameters."""


class TrialDiverged(RuntimeError):
    """The loss or a parameter became non-finite; carries the epoch at which it happened."""

    def __init__(self, epoch: int, what: str) -> None:
        super().__init__(f"trial diverged at epoch {epoch}: {what}")
        self.epoch = epoch
        self.what = what


@dataclass(frozen=True)
class EpochReport:
    """The numbers of one finished epoch (``epoch`` counts from 1)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    epoch_seconds: float
    lr: float
    activation_params: ParamSummary = field(default_factory=dict)


@dataclass(frozen=True)
class TrialResult:
    """The outcome of a finished trial.

    ``val_accuracy`` is the best validation accuracy over the epochs run, and ``test_accuracy`` is
    measured with the weights of that epoch; the test set is only reported, never optimised.
    """

    val_accuracy: float
    val_loss: float
    test_accuracy: float
    best_epoch: int
    epochs_run: int
    param_count: int
    activation_param_count: int
    device: str
    seconds: float
    stopped_early: bool
    history: tuple[EpochReport, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_threads: int | None = None  # torch's CPU thread count for a CPU run: it changes results in the last digits
    fused_activations: tuple[str, ...] = ()  # the families whose training took the fused path (see fused.trial_plan)
