"""A live one-line progress report on stderr, shown as the search starts and updated whenever a trial ends.

On a terminal the line rewrites itself (``\\r``), also when a trial starts; in a log file each update is a
line of its own.
Counts start from what the study already holds, so a resumed search shows the whole study.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from aaf_search.search.duration import clock_text


@dataclass
class ProgressLine:
    """Counts of complete / pruned / failed / running trials, the best value and the elapsed time.

    A backend calls :meth:`update` with each finished trial (or :meth:`tally` where it knows the outcome
    without reading the trial back); ``running`` is whatever it has in flight (always 0 between local trials).
    """

    label: str
    target: int
    direction: str = "maximize"
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best: float | None = None
    best_trial: int | None = None
    budget: float | None = None  # --timeout in seconds: the elapsed time is shown against it

    def __post_init__(self) -> None:
        self._started = self.clock()
        self._tty = self.stream.isatty()

    @classmethod
    def for_study(cls, study: optuna.Study, label: str, target: int, **kwargs: Any) -> ProgressLine:
        """A line whose counts start from the trials ``study`` already has."""
        line = cls(label, target, study.directions[0].name.lower(), **kwargs)
        for trial in study.get_trials(deepcopy=False):
            line.count(trial)
        return line

    def count(self, trial: FrozenTrial) -> None:
        self._add(trial.number, trial.state, trial.values[0] if trial.state == TrialState.COMPLETE else None)

    def _add(self, number: int, state: TrialState, value: float | None) -> None:
        if state == TrialState.COMPLETE:
            assert value is not None, "a COMPLETE trial has a value"
            self.complete += 1
            if self.best is None or (value > self.best if self.direction == "maximize" else value < self.best):
                self.best, self.best_trial = value, number
        elif state == TrialState.PRUNED:
            self.pruned += 1
        elif state == TrialState.FAIL:
            self.failed += 1

    def update(self, trial: FrozenTrial, running: int = 0) -> None:
        self.running = running
        self.count(trial)
        self.show()

    def started(self, running: int) -> None:
        """A trial began, ``running`` are in flight: a terminal's line shows it; a log gets a line per finished
        trial only (and the one :meth:`show` writes as the search starts)."""
        self.running = running
        if self._tty:
            self.show()

    def tally(self, number: int, state: TrialState, value: float | None = None, running: int = 0) -> None:
        """Count and show one finished trial; ``value``, the first objective's, only for a COMPLETE one."""
        self.running = running
        self._add(number, state, value)
        self.show()

    def elapsed(self) -> float:
        """Seconds since the line was made, which is when the search session began."""
        return self.clock() - self._started

    def text(self) -> str:
        elapsed = clock_text(self.elapsed())
        if self.budget is not None:
            elapsed += f" of {clock_text(self.budget)}"
        best = f"best {self.best:.4f} (#{self.best_trial})" if self.best is not None else "best -"
        return (
            f"{self.label}: {self.complete + self.pruned}/{self.target} trials "
            f"({self.complete} complete, {self.pruned} pruned), {self.failed} failed, {self.running} running, "
            f"{best}, {elapsed}"
        )

    def show(self) -> None:
        if self._tty:
            self.stream.write("\r\x1b[2K" + self.text())
        else:
            self.stream.write(self.text() + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message of its own line (a failed trial, say), above the live line on a terminal."""
        self.stream.write(("\r\x1b[2K" if self._tty else "") + text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the rewritten line so that the next output starts on a line of its own."""
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
