"""What a backend gets to run: the study, the recorder, the target count, the progress line, the run dir."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from aaf_search.config import TrialConfig
from aaf_search.search.duration import clock_text
from aaf_search.search.progress import ProgressLine
from aaf_search.search.recording import SURPLUS, SURPLUS_PREFIX, TrialRecorder, stored_category
from aaf_search.search.rundir import trial_dir
from aaf_search.search.settings import Resources
from aaf_search.search.study import ATTR_RETRY_OF, FINISHED, count_finished
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
class FailureStreak:
    """Failed trials in a row; a backend gives up after ``give_up_after`` of them (both backends' rule).

    Trials that were not run because other processes held every slot do not count.
    """

    give_up_after: int
    in_a_row: int = 0

    @property
    def gave_up(self) -> bool:
        return self.in_a_row >= self.give_up_after

    def record(self, trial: FrozenTrial) -> None:
        self.add(trial.state, stored_category(trial) if trial.state == TrialState.FAIL else None)

    def add(self, state: TrialState, category: str | None = None) -> None:
        """Count one finished trial; ``category``: a failed one's, as recorded (``fail_category``)."""
        if state != TrialState.FAIL:
            self.in_a_row = 0
        elif category != SURPLUS:
            self.in_a_row += 1


@dataclass(frozen=True)
class Claim:
    """``missing``: finished trials the study lacks; ``open``: of those, how many no process runs yet."""

    missing: int
    open: int


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
    shared: bool = False  # other processes may search the study too (a journal file or an RDB server)
    timeout: float | None = None  # seconds, on the progress line's clock, after which no trial starts
    retry_failed: bool = False  # run a trial whose Ray worker died again at once (see study.was_cut_off)
    gave_up: bool = False  # the backend stopped on a failure streak, short of the target
    timed_out: bool = False  # the backend stopped starting trials because the timeout passed

    def out_of_time(self) -> bool:
        """Whether the timeout has passed, so that no trial may start (Optuna's ``timeout`` rule: the
        trials already running finish). The first call that finds so says it on the progress line."""
        if self.timeout is None or self.progress.elapsed() < self.timeout:
            return False
        if not self.timed_out:
            self.timed_out = True
            self.progress.note(f"stopping: the --timeout of {clock_text(self.timeout)} has passed; no trial starts now")
        return True

    def give_up(self, streak: FailureStreak) -> None:
        """Stop for good after ``streak`` (the backends' shared rule): say why, and remember it for the exit code."""
        self.gave_up = True
        self.progress.note(f"stopping: the last {streak.in_a_row} trials all failed")

    def remaining(self) -> int:
        """Trials this session still has to run: the one count both backends go by (a FAIL is replaced)."""
        return max(self.target - count_finished(self.study), 0)

    def claim(self) -> Claim:
        """How many trials the study misses, and how many of those no process is running yet."""
        if not self.shared:
            missing = self.remaining()
            return Claim(missing=missing, open=missing)
        trials = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        finished = sum(t.state in FINISHED for t in trials)
        return Claim(missing=max(self.target - finished, 0), open=self.target - len(trials))

    def surplus(self, number: int) -> bool:
        """Whether trial ``number`` would be one too many: the trials before it fill the target.

        Trial numbers are handed out one by one by the storage, so of several processes that claimed the
        last slot at once exactly one sees fewer than ``target`` trials ahead of its own.
        """
        ahead = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        return sum(t.number < number for t in ahead) >= self.target

    def note_others_run_the_rest(self, claim: Claim) -> None:
        """Say why a backend starts no more trials: every one the study misses runs in another process."""
        self.progress.note(f"stopping: the study's last {claim.missing} trial(s) are running in other processes")

    def surplus_reason(self) -> str:
        """Why a trial that :meth:`surplus` says is one too many fails (its category: ``surplus``)."""
        return f"{SURPLUS_PREFIX} the study already holds or runs its {self.target} trials"

    def trial_dir(self, number: int) -> Path:
        """Where trial ``number`` writes its weights, config and metrics CSV."""
        return trial_dir(self.run_dir, number)

    def discard_checkpoint(self, number: int) -> None:
        """Delete the checkpoint trial ``number`` left, as a trial that will not be carried on: one the Ray
        backend pruned (its workers cannot tell a stop for pruning from a stop for Ctrl-C), one retried."""
        from aaf_search.trials.checkpoint import remove_checkpoint  # torch: imported where trials train

        remove_checkpoint(self.trial_dir(number))

    def out_dir(self, trial: optuna.Trial, config: TrialConfig) -> Path:
        """The directory the backends hand ``trial`` (of ``config``) to write into: its :meth:`trial_dir`,
        holding the checkpoint of the interrupted trial it retries, if that one left one: a trial killed at
        epoch 150 of 200 carries on from there (the retry has its config and seed, see
        :func:`~aaf_search.search.study.enqueue_retry`)."""
        retry_of = trial.user_attrs.get(ATTR_RETRY_OF)
        if retry_of is None:
            return self.trial_dir(trial.number)
        path = self._carrying_on(trial, config, [self.trial_dir(int(retry_of))], f"interrupted trial {retry_of}")
        # A trial is retried once: a checkpoint it still holds (unreadable, or of a config the space has
        # since changed) would never be carried on.
        self.discard_checkpoint(int(retry_of))
        return path

    def _carrying_on(self, trial: optuna.Trial, config: TrialConfig, earlier: Iterable[Path], source: str) -> Path:
        """``trial``'s directory, into which the checkpoint of ``config`` that one of the ``earlier`` run
        directories holds is moved (:func:`~aaf_search.trials.checkpoint.adopt_checkpoint`); the progress
        line says which epoch of ``source`` the trial carries on from."""
        from aaf_search.trials.checkpoint import adopt_checkpoint  # torch: imported where trials train

        path = self.trial_dir(trial.number)
        epochs = adopt_checkpoint(path, config.digest(), earlier)
        if epochs:
            self.progress.note(f"trial {trial.number} carries on from epoch {epochs} of {source}")
        return path
