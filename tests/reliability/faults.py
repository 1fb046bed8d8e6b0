"""Helpers for the fault-injection tests: a real ``aaf-search`` in a subprocess, and in-process stand-ins.

The subprocess tests run the real command line (``python -m aaf_search``) on the bundled digits data with
DNN2, whose epoch takes a few hundredths of a second: trials are made long enough to be caught mid-way by
asking for many epochs, never by a hook in the product.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from aaf_search.search.rundir import study_run_dir, trial_dir
from aaf_search.search.storage import open_storage
from aaf_search.trials.checkpoint import CHECKPOINT_FILE

# One learning-rate parameter over a fixed ReLU plan: every trial trains the same small net, so trial
# lengths are even and a kill lands mid-trial predictably.
SPACE = """\
model: dnn2
base: {plan: [{select: all, activation: {family: relu}}]}
params:
  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.01, log: true}
"""
STUDY = "space"  # a space file's study is named after the file

WAIT_SECONDS = 120.0  # generous: two cores shared with other jobs make process start-up slow at times


def search_command(storage: str, *extra: str, trials: int = 3, epochs: int = 40) -> list[str]:
    """The user's command: ``aaf-search --space space.yaml ...`` with the local backend and no pruner."""
    return [
        "aaf-search", "--space", "space.yaml", "--storage", storage, "--backend", "local", "--sampler", "random",
        "--pruner", "none", "--trials", str(trials), "--epochs", str(epochs), "--seed", "5", *extra,
    ]  # fmt: skip


def default_sigint() -> None:
    """In the child before it runs Python: take SIGINT as a terminal would deliver it.

    A test suite started in the background (``./run-tests &``) inherits SIGINT ignored, and Python keeps
    an ignored SIGINT ignored, so Ctrl-C would never reach the search under test.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Search:
    """An ``aaf-search`` process in its own session, so that the test can signal it and all it started."""

    process: subprocess.Popen[str]
    log: Path

    @classmethod
    def start(cls, command: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Search:
        assert command[0] == "aaf-search"
        handle = log.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "aaf_search", *command[1:]],
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: Ray's helpers go with it when the test cleans up
            preexec_fn=default_sigint,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        return cls(process, log)

    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        return self.process.wait(timeout=timeout)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group this test started (Ray's raylet and workers)."""
        with contextlib.suppress(ProcessLookupError):  # every process of the group has exited already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def trials(storage: str | BaseStorage, study: str = STUDY) -> list[FrozenTrial]:
    """The study's trials, read afresh (another process writes them); none while the study does not exist."""
    backend = open_storage(storage) if isinstance(storage, str) else storage
    try:
        return optuna.load_study(study_name=study, storage=backend).get_trials(deepcopy=False)
    except KeyError:
        return []


def wait_until(
    condition: Callable[[], bool], searches: Sequence[Search], what: str, timeout: float = WAIT_SECONDS
) -> None:
    """Poll ``condition`` until it holds; fail with the searches' output if one exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        for search in searches:
            if search.process.poll() is not None:
                raise AssertionError(
                    f"the search exited ({search.process.returncode}) before {what}:\n{search.output()}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def running_mid_trial(storage: str, number: int) -> Callable[[], bool]:
    """A condition: trial ``number`` is RUNNING and has reported at least two epochs (so it is training)."""

    def condition() -> bool:
        found = [t for t in trials(storage) if t.number == number]
        return bool(found) and found[0].state == TrialState.RUNNING and len(found[0].intermediate_values) >= 2

    return condition


def saved_mid_trial(storage: str, number: int) -> Callable[[], bool]:
    """A condition: trial ``number`` is training (:func:`running_mid_trial`) and has saved a checkpoint
    (a trial's first save waits until it has trained 50 times the save's estimated cost, ~0.1 s here)."""
    training = running_mid_trial(storage, number)
    checkpoint = trial_dir(study_run_dir(STUDY), number) / CHECKPOINT_FILE
    return lambda: training() and checkpoint.is_file()


def finished(found: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in found if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def search_fakes() -> ModuleType:
    """``tests/search/conftest.py``, whose :class:`FakeRunner` these tests reuse.

    Loaded by path under its own name: two rootless ``conftest`` modules cannot both be imported as
    ``conftest``.
    """
    path = Path(__file__).resolve().parents[1] / "search" / "conftest.py"
    spec = importlib.util.spec_from_file_location("search_fakes", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module
