"""``load_run``: a run directory rebuilt into the model it trained, with the accuracy it reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aaf_search.activations.pishchik import CosLU
from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.errors import UserError
from aaf_search.trials.loop import evaluate
from aaf_search.trials.runner import load_run, run_trial

PLAN = (
    PlanEntry("tag:stem", ActivationSpec("coslu", shape="channel")),
    PlanEntry("tag:stage_end", ActivationSpec("lslu", options={"n": 2})),
)
CONFIG = TrialConfig(model="resnet8", epochs=2, seed=5, device="cpu", plan=PLAN)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A trained two-epoch ResNet-8 run with two kinds of trainable activation, and its test accuracy."""
    out = tmp_path_factory.mktemp("run")
    return out, run_trial(CONFIG, out_dir=out).test_accuracy


def test_a_run_reloads_with_its_weights_and_its_test_accuracy(run_dir: tuple[Path, float]) -> None:
    out, test_accuracy = run_dir
    run = load_run(out)
    assert run.config == CONFIG and run.saved["test_accuracy"] == test_accuracy
    assert not run.model.training
    # The plan's activations are back in their slots, with the trained values of their parameters.
    stem = run.model.get_submodule("stem.act.act")
    assert isinstance(stem, CosLU) and stem.a.shape == (16, 1, 1)
    saved = torch.load(out / "model.pt", weights_only=True)
    assert torch.equal(stem.a, saved["stem.act.act.a"]) and not torch.equal(stem.a, torch.ones(16, 1, 1))
    assert 0.3 < test_accuracy == evaluate(run.model, run.data.test_x, run.data.test_y)[1]


def test_a_run_without_weights_is_one_line(run_dir: tuple[Path, float], tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_bytes((run_dir[0] / "config.yaml").read_bytes())
    with pytest.raises(UserError, match=r"has a config.yaml but no model.pt: the run did not finish$"):
        load_run(tmp_path)
    with pytest.raises(UserError, match=r"nothing' does not exist; runs are written by aaf-search train and"):
        load_run(tmp_path / "nothing")
    with pytest.raises(UserError, match=r"' is not a run directory \(it has no config.yaml\); runs are written"):
        load_run(tmp_path.parent)
    interrupted = tmp_path / "interrupted"  # a resumable run cut off before its end: only its checkpoint
    interrupted.mkdir()
    (interrupted / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(UserError, match=r"holds an interrupted run \(checkpoint.pt, no weights yet\); the command"):
        load_run(interrupted)


def test_weights_of_another_model_are_refused(run_dir: tuple[Path, float], tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_bytes((run_dir[0] / "config.yaml").read_bytes())
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "model.pt")
    with pytest.raises(
        UserError, match=r"model.pt' does not hold this run's weights: Error\(s\) in loading state_dict"
    ):
        load_run(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"model.pt' does not hold this run's weights"):
        load_run(tmp_path)
