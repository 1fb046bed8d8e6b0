"""What a backend gets to run: the study, the recorder, the target count, the progress line, the run dir."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import optuna

from aaf_search.config import TrialConfig
from aaf_search.search.progress import ProgressLine
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.settings import Resources
from aaf_search.search.study import count_finished
from aaf_search.trials.report import EpochReport, TrialResult


class TrialRunner(Protocol):
    """``aaf_search.trials.runner.run_trial``'s signature; tests pass a fake."""

    def __call__(
        self,
        config: TrialConfig,
        *,
        on_epoch: Callable[[EpochReport], None] | None = None,
        out_dir: Path | None = None,
    ) -> TrialResult: ...


@dataclass
class SearchSession:
    """One run of a search over a study; a backend runs trials until :meth:`remaining` is 0."""

    study: optuna.Study
    recorder: TrialRecorder
    target: int  # finished (COMPLETE + PRUNED) trials the study should hold at the end
    progress: ProgressLine
    run_dir: Path
    runner: TrialRunner
    resources: Resources

    def remaining(self) -> int:
        return max(self.target - count_finished(self.study), 0)

    def trial_dir(self, number: int) -> Path:
        """Where trial ``number`` writes its weights, config and metrics CSV."""
        return self.run_dir / "trials" / f"{number:04d}"
