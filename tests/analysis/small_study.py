"""Small studies for the analysis tests: fake runners with hand-computable scores, and one real search.

:class:`FakeRunner` trains nothing and reports a LinComb ``w`` it makes up; :class:`PlannedRunner` reports
the parameters of the plan's activations in the real model, for studies on any model and selector.

The real search (``lincomb_bases`` on ``digits``, 3 trials of 2 epochs, then ``robust`` with top-2 and two
seeds) is built once per test process and copied by each test that uses it, so the slow part runs once.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aaf_search.analysis.robust import run_robust
from aaf_search.analysis.robust_settings import RobustSettings
from aaf_search.analysis.robust_table import conclude
from aaf_search.config import TrialConfig
from aaf_search.search import SearchSettings, run_search
from aaf_search.trials.data import get_dataset
from aaf_search.trials.models import build_model, model_info
from aaf_search.trials.plan import activation_parameters, apply_plan, summarize_activation_params
from aaf_search.trials.report import EpochReport, ParamStats, ParamSummary, TrialResult
from aaf_search.trials.runner import save_run

REAL_DB = "real.db"
REAL_STUDY = "lincomb_bases"
REAL_SEEDS = (1, 2)


def fake_accuracy(config: TrialConfig, epoch: int) -> float:
    """0.5 + 10 lr + 0.1 per epoch, + 0.05 with a plan, + seed % 3 / 100: every score by hand."""
    return round(0.5 + 10 * config.optim.lr + 0.1 * epoch + (0.05 if config.plan else 0.0) + config.seed % 3 / 100, 6)


FAKE_THREADS = 3  # the thread count every fake run reports: not a machine's default, so a test sees it carried


@dataclass
class FakeRunner:
    """``run_trial`` stand-in that trains nothing; a LinComb's ``w`` "learns" (0.25 · epoch, 0.5, 0.5, ...)."""

    configs: list[TrialConfig] = field(default_factory=list)

    def __call__(
        self,
        config: TrialConfig,
        *,
        on_epoch: Callable[[EpochReport], None] | None = None,
        out_dir: Path | None = None,
    ) -> TrialResult:
        self.configs.append(config)
        history = []
        for epoch in range(1, config.epochs + 1):
            params = self.learned(config, epoch)
            report = EpochReport(
                epoch=epoch,
                train_loss=1.0 / epoch,
                val_loss=1.0 / epoch,
                val_accuracy=fake_accuracy(config, epoch),
                epoch_seconds=0.1,
                lr=config.optim.lr,
                activation_params=params,
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
            param_count=1000,
            activation_param_count=3 if config.plan else 0,
            device="cpu",
            cpu_threads=FAKE_THREADS,
            seconds=0.1 * len(history),
            stopped_early=False,
            history=tuple(history),
        )

    def learned(self, config: TrialConfig, epoch: int) -> ParamSummary:
        """The activation parameters after ``epoch``: a LinComb ``w`` in ``fc.act1`` and ``fc.act2``."""
        if not config.plan:
            return {}
        bases = config.plan[0].activation.options.get("bases", ["relu", "sigmoid", "tanh", "softsign"])
        w = [0.25 * epoch] + [0.5] * (len(bases) - 1)
        stats = ParamStats(mean=sum(w) / len(w), min=min(w), max=max(w), values=w)
        return {"fc.act1": {"w": stats}, "fc.act2": {"w": stats}}


@dataclass
class PlannedRunner(FakeRunner):
    """A fake that puts the plan into the real model (at the size a trial trains at) and trains nothing.

    Each epoch moves every activation parameter by 0.1 and reports them as a trial does: the slots and
    parameters are the model's own, whatever the plan's selectors (``tag:stem``, ``tag:conv``, ...).
    """

    model: nn.Module | None = None

    def __call__(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        self.model = None  # built at the first epoch of a trial with a plan
        result = super().__call__(config, **kwargs)
        if kwargs.get("out_dir") is not None and self.model is not None:  # its weights, as a trial saves them
            save_run(Path(kwargs["out_dir"]), config, self.model, result)
        return result

    def learned(self, config: TrialConfig, epoch: int) -> ParamSummary:
        if epoch == 1:
            info = get_dataset(config.data.name)
            channels, height, _ = info.input_shape
            size = max(height, model_info(config.model).min_input_size or 1)  # as load_data resizes
            self.model = build_model(config.model, input_shape=(channels, size, size), num_classes=info.num_classes)
            apply_plan(self.model, config.plan, torch.zeros(2, channels, size, size))
        assert self.model is not None
        with torch.no_grad():
            for param in activation_parameters(self.model):
                param.add_(0.1)
        return summarize_activation_params(self.model)


def fake_search(
    storage: str,
    *,
    trials: int = 4,
    space: str = "lincomb_bases",
    runner: FakeRunner | None = None,
    **changes: object,
) -> FakeRunner:
    """A search of ``trials`` fake trials of 2 epochs into ``storage``; returns the runner (its configs)."""
    runner = runner if runner is not None else FakeRunner()
    settings = {"space": space, "trials": trials, "sampler": "random", "pruner": "none", "storage": storage}
    run_search(SearchSettings(**{**settings, "epochs": 2, "seed": 3, **changes}), runner=runner, stream=io.StringIO())  # type: ignore[arg-type]
    return runner


_REAL: dict[str, Path] = {}


def real_study(into: Path) -> str:
    """Copy the real small study (search + robust, built once) into ``into``; return its storage URL there."""
    if "dir" not in _REAL:
        built = Path(tempfile.mkdtemp(prefix="aaf-real-study-"))
        url = f"sqlite:///{built / REAL_DB}"
        search = SearchSettings(
            space=REAL_STUDY,
            trials=4,
            sampler="random",
            storage=url,
            epochs=2,
            model="dnn2",
            seed=5,
            out=built / "runs",
        )
        run_search(search, stream=io.StringIO())
        robust = RobustSettings(storage=url, top_k=2, seeds=REAL_SEEDS, backend="local", out=built / "robust")
        conclude(run_robust(robust, stream=io.StringIO()))
        _REAL["dir"] = built
    for item in _REAL["dir"].iterdir():
        copy = shutil.copytree if item.is_dir() else shutil.copy2
        copy(item, into / item.name)
    return f"sqlite:///{into / REAL_DB}"
