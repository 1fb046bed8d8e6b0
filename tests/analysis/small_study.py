"""Small studies for the analysis tests: a fake runner with hand-computable scores, and one real search.

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

from aaf_search.analysis.robust import RobustSettings, run_robust
from aaf_search.analysis.robust_table import conclude
from aaf_search.config import TrialConfig
from aaf_search.search import SearchSettings, run_search
from aaf_search.trials.report import EpochReport, TrialResult

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
            params = {}
            if config.plan:
                bases = config.plan[0].activation.options.get("bases", ["relu", "sigmoid", "tanh", "softsign"])
                w = [0.25 * epoch] + [0.5] * (len(bases) - 1)
                stats = {"mean": sum(w) / len(w), "min": min(w), "max": max(w), "values": w}
                params = {"fc.act1": {"w": stats}, "fc.act2": {"w": stats}}
            report = EpochReport(
                epoch=epoch,
                train_loss=1.0 / epoch,
                val_loss=1.0 / epoch,
                val_accuracy=fake_accuracy(config, epoch),
                epoch_seconds=0.1,
                lr=config.optim.lr,
                activation_params=params,  # type: ignore[arg-type]
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


def fake_search(storage: str, *, trials: int = 4, space: str = "lincomb_bases", **changes: object) -> FakeRunner:
    """A search of ``trials`` fake trials of 2 epochs into ``storage``; returns the runner (its configs)."""
    runner = FakeRunner()
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
