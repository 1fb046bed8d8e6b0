"""A resumable run killed after an epoch carries on from its checkpoint to an uninterrupted run's numbers."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from aaf_search.config import ActivationSpec, DataConfig, OptimConfig, PlanEntry, TrialConfig
from aaf_search.errors import UserError
from aaf_search.trials import checkpoint as checkpoint_module
from aaf_search.trials.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    FitProgress,
    TrainingState,
    adopt_checkpoint,
    remove_checkpoint,
)
from aaf_search.trials.optim import build_optimisers
from aaf_search.trials.report import EpochReport, TrialResult
from aaf_search.trials.runner import run_trial

# Everything a resumed run must restore: dropout (torch's random state), random translations (the
# shuffling generator), Adam's moments, a cosine schedule, a trainable activation.
CONFIG = TrialConfig(
    model="kerasnet",
    data=DataConfig(name="synthetic", augment=True, options={"shape": [3, 12, 12], "size": 96}),
    plan=(PlanEntry("tag:conv", ActivationSpec("coslu")),),
    optim=OptimConfig(name="adam", lr=0.003, schedule="cosine"),
    epochs=4,
    batch_size=16,
    seed=5,
)


class Interrupt(KeyboardInterrupt):
    """Ctrl-C (or, as far as the checkpoint goes, a killed process) after an epoch's checkpoint was written."""


class Pruned(Exception):
    """What a pruner's callback raises: the run ends for good."""


def interrupt_after(epoch: int, error: type[BaseException] = Interrupt) -> Callable[[EpochReport], None]:
    def on_epoch(report: EpochReport) -> None:
        if report.epoch == epoch:
            raise error

    return on_epoch


def numbers(result: TrialResult) -> list[tuple[float, ...]]:
    """Every epoch's numbers but its wall time."""
    return [(r.epoch, r.train_loss, r.val_loss, r.val_accuracy, r.lr) for r in result.history]


@pytest.fixture
def save_every_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Saves are spaced by what they cost (see the last test); these runs' epochs take milliseconds.
    monkeypatch.setattr(checkpoint_module, "SAVE_TIME_SHARE", math.inf)


@pytest.mark.usefixtures("save_every_epoch")
def test_an_interrupted_run_carries_on_to_the_numbers_of_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = run_trial(CONFIG, out_dir=tmp_path / "whole")

    with pytest.raises(Interrupt):
        run_trial(CONFIG, out_dir=tmp_path / "cut", resumable=True, on_epoch=interrupt_after(2))
    checkpoint = Checkpoint.in_run_dir(tmp_path / "cut", CONFIG.digest())
    assert checkpoint.epochs_done() == 2
    seen: list[EpochReport] = []
    resumed = run_trial(CONFIG, out_dir=tmp_path / "cut", resumable=True, on_epoch=seen.append)

    # on_epoch sees the checkpoint's epochs first, then those trained now: the whole run, as a pruner must
    assert [report.epoch for report in seen] == [1, 2, 3, 4] and tuple(seen) == resumed.history
    assert numbers(resumed) == numbers(whole)  # epochs 1 and 2 come back from the checkpoint
    assert resumed.seconds > sum(report.epoch_seconds for report in resumed.history)  # the earlier epochs count
    assert (resumed.best_epoch, resumed.test_accuracy) == (whole.best_epoch, whole.test_accuracy)
    weights = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)
    expected = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[key], expected[key]) for key in expected)
    assert not (tmp_path / "cut" / CHECKPOINT_FILE).exists()  # the finished run needs it no more


@pytest.mark.usefixtures("save_every_epoch")
def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        run_trial(CONFIG, out_dir=tmp_path, resumable=True, on_epoch=interrupt_after(1))
    other = CONFIG.replace(seed=6, epochs=2)
    assert Checkpoint.in_run_dir(tmp_path, other.digest()).epochs_done() == 0
    trained: list[int] = []
    result = run_trial(other, out_dir=tmp_path, resumable=True, on_epoch=lambda r: trained.append(r.epoch))
    assert trained == [1, 2]  # none replayed: the checkpoint was another config's
    fresh = run_trial(other)
    assert numbers(result) == numbers(fresh) and result.test_accuracy == fresh.test_accuracy


@pytest.mark.usefixtures("save_every_epoch")
@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (Interrupt, True),  # Ctrl-C: run again, it carries on
        (OSError, True),  # a full disk: once there is space, it carries on
        (SystemExit, True),  # how Ray stops a worker thread (the driver removes a pruned trial's)
        (Pruned, False),  # the local backend's pruner: the run ends for good
        (RuntimeError, False),  # a failure of the run's own: a rerun would fail the same way
    ],
)
def test_a_checkpoint_stays_only_for_a_run_that_can_carry_on(
    error: type[BaseException], kept: bool, tmp_path: Path
) -> None:
    with pytest.raises(error):
        run_trial(CONFIG, out_dir=tmp_path, resumable=True, on_epoch=interrupt_after(2, error))
    assert Checkpoint.in_run_dir(tmp_path, CONFIG.digest()).epochs_done() == (2 if kept else 0)
    assert (tmp_path / CHECKPOINT_FILE).exists() == kept  # none left to fill the disk
    assert tmp_path.exists() == kept  # nor an empty run directory


def test_an_unreadable_checkpoint_is_named_with_the_way_out(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"checkpoint '.*checkpoint\.pt' cannot be read .*; delete it to train from"):
        run_trial(CONFIG, out_dir=tmp_path, resumable=True)


def _training_state(seed: int) -> TrainingState:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 2))
    opts = build_optimisers(model, OptimConfig(name="adam"), epochs=3)
    best = copy.deepcopy(model.state_dict())
    return TrainingState(model, opts, torch.amp.GradScaler("cpu", enabled=False), torch.Generator(), best)


@pytest.mark.parametrize("best_epoch", [1, 2])
def test_the_best_epochs_weights_come_back_whether_or_not_the_last_epoch_was_the_best(
    best_epoch: int, tmp_path: Path
) -> None:
    saved, restored = _training_state(1), _training_state(2)
    with torch.no_grad():
        for value in saved.best_state.values():
            value.add_(1.0)  # the best epoch's weights: not the model's (unless epoch 2 was the best)
    if best_epoch == 2:
        saved.best_state.update({k: v.clone() for k, v in saved.model.state_dict().items()})
    reports = [EpochReport(epoch, 1.0, 1.0, 0.5, 0.1, 0.001) for epoch in (1, 2)]
    progress = FitProgress(
        history=reports, best_accuracy=0.5, best_loss=1.0, best_epoch=best_epoch, stale=2 - best_epoch
    )
    checkpoint = Checkpoint(tmp_path / CHECKPOINT_FILE, "key")
    checkpoint.save(saved, progress)

    carried = FitProgress()
    checkpoint.restore(restored, carried)
    assert carried == progress
    for key, value in saved.best_state.items():
        assert torch.equal(restored.best_state[key], value)
    for key, value in saved.model.state_dict().items():
        assert torch.equal(restored.model.state_dict()[key], value)


def test_saves_are_spaced_to_cost_at_most_two_percent_of_the_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = [100.0]
    monkeypatch.setattr(checkpoint_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    saved: list[int] = []

    def take_half_a_second(self: Checkpoint, state: TrainingState, progress: FitProgress) -> None:
        saved.append(progress.epochs_done)
        clock[0] += 0.5

    monkeypatch.setattr(Checkpoint, "save", take_half_a_second)
    checkpoint = Checkpoint(tmp_path / CHECKPOINT_FILE, "key")
    progress = FitProgress()
    for epoch in range(1, 41):  # epochs of 2 s
        progress.history.append(EpochReport(epoch, 1.0, 1.0, 0.5, 2.0, 0.001))
        checkpoint.save_if_due(_training_state(0), progress)
        clock[0] += 2.0
    # A save of 0.5 s is due again 25 s after the last one began: at epoch 1 (t = 100), then the first
    # epoch ending at or after 125 s (epoch 14, at 126.5 s), 151.5 s (27, at 153 s) and 178 s (40).
    assert saved == [1, 14, 27, 40]


def test_the_first_save_waits_for_fifty_times_its_estimated_cost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    saved: list[int] = []
    monkeypatch.setattr(Checkpoint, "save", lambda self, state, progress: saved.append(progress.epochs_done))
    checkpoint = Checkpoint(tmp_path / CHECKPOINT_FILE, "key")
    state = _training_state(0)  # two weight tensors of 32 bytes in all
    assert checkpoint_module.estimated_save_seconds(state) == pytest.approx(0.002 + 4 * (2 * 25e-6 + 32e-9))
    progress = FitProgress()
    for epoch in range(1, 6):  # epochs of 0.03 s: the run of a small search trial
        progress.history.append(EpochReport(epoch, 1.0, 1.0, 0.5, 0.03, 0.001))
        checkpoint.save_if_due(state, progress)
    # 50 x 2.2 ms = 0.11 s: epochs 1-3 (0.09 s of training) would pay more than 2 % for a first save
    assert saved[0] == 4


def test_a_run_takes_over_the_checkpoint_an_interrupted_run_of_its_config_left(tmp_path: Path) -> None:
    progress = FitProgress(history=[EpochReport(1, 1.0, 1.0, 0.5, 0.1, 0.001)], best_epoch=1)
    Checkpoint.in_run_dir(tmp_path / "0000", "other config").save(_training_state(0), progress)
    Checkpoint.in_run_dir(tmp_path / "0001", "this config").save(_training_state(0), progress)
    earlier = [tmp_path / "0000", tmp_path / "0001", tmp_path / "never ran"]

    assert adopt_checkpoint(tmp_path / "0002", "this config", earlier) == 1
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob(CHECKPOINT_FILE)) == [
        "0000/checkpoint.pt",  # another config's: left where it is
        "0002/checkpoint.pt",  # moved, not copied: one run carries it on
    ]
    assert not (tmp_path / "0001").exists()  # left empty, so removed
    assert adopt_checkpoint(tmp_path / "0003", "this config", earlier) == 0
    (tmp_path / "0004").mkdir()
    (tmp_path / "0004" / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")  # a damaged disk, say
    assert adopt_checkpoint(tmp_path / "0005", "this config", [tmp_path / "0004"]) == 0  # trains from the start
    assert (tmp_path / "0004" / CHECKPOINT_FILE).exists() and not (tmp_path / "0005").exists()


def test_removing_a_checkpoint_removes_what_a_killed_save_left_and_then_the_empty_directory(tmp_path: Path) -> None:
    run = tmp_path / "trials" / "0001"
    run.mkdir(parents=True)
    (run / CHECKPOINT_FILE).write_bytes(b"epochs 1-3")
    (run / f"{CHECKPOINT_FILE}.1765400000000000000.tmp").write_bytes(b"epoch 4, half")  # SIGKILL mid-save
    remove_checkpoint(run)
    assert not run.exists()

    run.mkdir()
    kept = [run / f"{CHECKPOINT_FILE}.notes.tmp", run / "model.pt"]  # not what write_atomically names
    for path in kept:
        path.write_bytes(b"a user's")
    (run / f"{CHECKPOINT_FILE}.17.tmp").write_bytes(b"half")
    remove_checkpoint(run)
    assert sorted(run.iterdir()) == sorted(kept)
