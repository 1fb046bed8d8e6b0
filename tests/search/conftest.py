"""Fakes for search tests: a trial runner that trains nothing and a pruner that prunes odd trials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest

from aaf_search.config import TrialConfig
from aaf_search.search import PRUNERS
from aaf_search.trials.report import EpochReport, TrialDiverged, TrialResult


@dataclass
class FakeRunner:
    """``run_trial`` stand-in: accuracy rises 0.1 per epoch from a start set by the learning rate.

    ``diverge_calls`` lists the (0-based) calls that raise :class:`TrialDiverged` at epoch 1.
    """

    diverge_calls: set[int] = field(default_factory=set)
    configs: list[TrialConfig] = field(default_factory=list)
    out_dirs: list[Path | None] = field(default_factory=list)  # where each call was told to write

    def __call__(
        self,
        config: TrialConfig,
        *,
        on_epoch: Callable[[EpochReport], None] | None = None,
        out_dir: Path | None = None,
    ) -> TrialResult:
        call = len(self.configs)
        self.configs.append(config)
        self.out_dirs.append(out_dir)
        history = []
        for epoch in range(1, config.epochs + 1):
            if call in self.diverge_calls:
                raise TrialDiverged(epoch, "loss is nan")
            report = EpochReport(
                epoch=epoch,
                train_loss=1.0 / epoch,
                val_loss=1.0 / epoch,
                val_accuracy=accuracy(config, epoch),
                epoch_seconds=0.5,
                lr=config.optim.lr,
                activation_params={"fc.act1": {"a": {"mean": 1.0, "min": 0.5, "max": 1.5}}},
            )
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)
        return TrialResult(
            val_accuracy=history[-1].val_accuracy,
            val_loss=history[-1].val_loss,
            test_accuracy=history[-1].val_accuracy - 0.01,
            best_epoch=len(history),
            epochs_run=len(history),
            param_count=1000 + len(config.plan) * 10,
            activation_param_count=len(config.plan) * 10,
            device="cpu",
            seconds=0.5 * len(history),
            stopped_early=False,
            history=tuple(history),
            extra={"base_val_accuracy": 0.25},
        )


def accuracy(config: TrialConfig, epoch: int) -> float:
    return round(0.5 + 10 * config.optim.lr + 0.1 * epoch, 6)


class OddTrialPruner(optuna.pruners.BasePruner):
    """Prunes every odd-numbered trial after its first epoch: deterministic PRUNED trials for tests."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1 and trial.last_step is not None and trial.last_step >= 1


@pytest.fixture
def odd_pruner(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Registers ``--pruner odd`` for the duration of a test."""
    monkeypatch.setitem(PRUNERS, "odd", lambda epochs: OddTrialPruner())
    yield "odd"


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every search test runs in its own directory: aaf-runs/ and the default storage land there."""
    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return tmp_path
