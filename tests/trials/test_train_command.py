"""``aaf-search train --config``: it trains with the CPU thread count the exported trial ran with."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from aaf_search.cli import main
from aaf_search.config import DataConfig, TrialConfig, load_yaml, save_yaml
from aaf_search.trials import runner
from aaf_search.trials.checkpoint import Checkpoint
from aaf_search.trials.runner import run_trial


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def threads_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The torch thread count each (faked) training saw; the test process's count is restored after."""
    seen: list[int] = []

    def fake_run_trial(config: TrialConfig, on_epoch: Any = None, **_: Any) -> Any:
        seen.append(torch.get_num_threads())
        return run_trial(config.replace(epochs=1), on_epoch=on_epoch)

    original = torch.get_num_threads()
    monkeypatch.setattr(runner, "run_trial", fake_run_trial)
    try:
        yield seen
    finally:
        torch.set_num_threads(original)


def _config() -> TrialConfig:
    return TrialConfig(model="dnn2", epochs=1)


def test_train_uses_the_exported_trials_thread_count(
    threads_seen: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    save_yaml("best.yaml", _config(), cpu_threads=1)
    assert main(["train", "--config", "best.yaml", "--out", "run"]) == 0
    assert threads_seen == [1]
    note, first_epoch = capsys.readouterr().err.splitlines()
    assert note == "using 1 CPU thread(s), as the exported trial did (--threads to change)"
    assert first_epoch.startswith("epoch   1/1  train loss ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_config_refused_at_the_start_prints_only_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    save_yaml("best.yaml", _config(), cpu_threads=1)
    assert main(["train", "--config", "best.yaml", "--out", "run", "--device", "cuda"]) == 2
    assert capsys.readouterr().err == (
        "aaf-search: error: device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto\n"
    )
    assert not Path("run").exists()


def test_quiet_prints_only_the_result_line(threads_seen: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    save_yaml("best.yaml", _config(), cpu_threads=1)
    assert main(["train", "--config", "best.yaml", "--out", "run", "--quiet"]) == 0
    assert threads_seen == [1]  # the exported trial's thread count, used without saying so
    out, err = capsys.readouterr()
    assert err == ""
    assert re.fullmatch(
        r"dnn2 on digits: val acc 0\.\d{4} \(epoch 1\), test acc 0\.\d{4}, 1 epoch in .+s -> run\n", out
    )


def test_threads_option_overrides_and_is_checked(threads_seen: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    save_yaml("best.yaml", _config(), cpu_threads=1)
    assert main(["train", "--config", "best.yaml", "--out", "run", "--threads", "2"]) == 0
    assert threads_seen == [2]
    assert "as the exported trial did" not in capsys.readouterr().err
    assert main(["train", "--config", "best.yaml", "--out", "run2", "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "aaf-search: error: --threads must be >= 1, got 0"
    assert threads_seen == [2] and not Path("run2").exists()


def test_runs_with_other_thread_counts_get_their_own_directories(
    threads_seen: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    # A CPU run's numbers depend on its thread count: one must not overwrite the other's weights and metrics.
    save_yaml("best.yaml", _config(), cpu_threads=2)
    for threads in ("1", "2"):
        assert main(["train", "--config", "best.yaml", "--threads", threads, "--quiet"]) == 0
    digest = _config().digest()
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(" -> ", 1)[1] for line in lines] == [
        f"aaf-runs/train/{digest}-threads1",
        f"aaf-runs/train/{digest}-threads2",
    ]


def test_a_cpu_run_records_its_thread_count() -> None:
    result = run_trial(_config())
    assert result.cpu_threads == torch.get_num_threads()


def test_precision_option_overrides_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[TrialConfig] = []

    def fake_run_trial(config: TrialConfig, **_: Any) -> Any:
        trained.append(config)
        return run_trial(config.replace(epochs=1))

    monkeypatch.setattr(runner, "run_trial", fake_run_trial)
    save_yaml("best.yaml", _config())
    assert main(["train", "--config", "best.yaml", "--out", "run", "--quiet", "--precision", "bf16"]) == 0
    assert [config.precision for config in trained] == ["bf16"]


def test_dataset_option_retrains_the_config_on_another_data_set(capsys: pytest.CaptureFixture[str]) -> None:
    # Searched on a long-tailed CIFAR-10, retrained on the 4-class synthetic set: the model is built for
    # the new set, and the option only the old set takes is left out, with a note.
    searched = _config().replace(data=DataConfig(name="cifar10_lt", options={"imbalance_ratio": 10, "split_seed": 3}))
    save_yaml("best.yaml", searched)
    args = ["train", "--config", "best.yaml", "--out", "run", "--dataset", "synthetic"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == "not passing data option(s) imbalance_ratio to data set 'synthetic': it takes none"
    assert out.startswith("dnn2 on synthetic: val acc ")
    trained, _ = load_yaml("run/config.yaml")
    assert trained.data == DataConfig(name="synthetic", options={"split_seed": 3})
    weights = torch.load("run/model.pt", weights_only=True)
    assert list(weights.values())[-1].shape == (4,)  # the output layer's bias: one per synthetic class


def test_download_option_sets_the_configs_download(monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[TrialConfig] = []
    monkeypatch.setattr(runner, "run_trial", lambda config, **_: trained.append(config) or run_trial(_config()))
    save_yaml("best.yaml", _config())
    assert main(["train", "--config", "best.yaml", "--out", "run", "--quiet", "--download", "--dataset", "mnist"]) == 0
    assert [(config.data.name, config.data.download) for config in trained] == [("mnist", True)]


def test_an_unknown_dataset_is_refused_with_the_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    save_yaml("best.yaml", _config())
    assert main(["train", "--config", "best.yaml", "--out", "run", "--dataset", "cifar11"]) == 2
    assert capsys.readouterr().err.startswith(
        "aaf-search: error: unknown data set 'cifar11'; valid names: digits, mnist, fashion_mnist, cifar10"
    )
    assert not Path("run").exists()


def stop_after_epoch(epoch: int) -> Any:
    """A stand-in for ``Checkpoint.save_if_due`` that saves every epoch (these take milliseconds, which
    saves are spaced by), then stops the run with Ctrl-C once ``epoch`` is safe on disk."""

    def save_then_stop(self: Checkpoint, state: Any, progress: Any) -> None:
        self.save(state, progress)
        if progress.epochs_done == epoch:
            raise KeyboardInterrupt

    return save_then_stop


TRAIN = ["train", "--config", "best.yaml", "--out", "run", "--threads", "1"]


def train_until_ctrl_c(monkeypatch: pytest.MonkeyPatch, epochs: int, stop_after: int) -> None:
    """``aaf-search train`` of a DNN2 for ``epochs``, stopped by Ctrl-C once epoch ``stop_after`` is saved."""
    save_yaml("best.yaml", TrialConfig(model="dnn2", epochs=epochs))
    with monkeypatch.context() as patched:
        patched.setattr(Checkpoint, "save_if_due", stop_after_epoch(stop_after))
        assert main(TRAIN) == 130


def test_train_interrupted_carries_on_from_its_checkpoint_when_run_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    train_until_ctrl_c(monkeypatch, epochs=4, stop_after=2)
    err = capsys.readouterr().err
    assert "aaf-search: to resume, run the same command again: aaf-search train --config best.yaml" in err
    assert main(TRAIN) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0] == "carrying on from the checkpoint in run: 2 of 4 epochs done (--restart to start over)"
    assert [line[:11] for line in lines[1:]] == ["epoch   3/4", "epoch   4/4"]
    assert "4 epochs (2 before the interruption) in " in out
    epochs = [row.split(",")[0] for row in Path("run/metrics.csv").read_text().splitlines()]
    assert epochs == ["epoch", "1", "2", "3", "4"]
    assert not Path("run/checkpoint.pt").exists()


def test_train_restart_starts_over_despite_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    train_until_ctrl_c(monkeypatch, epochs=2, stop_after=1)
    capsys.readouterr()
    assert main([*TRAIN, "--restart"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line[:11] for line in err] == ["epoch   1/2", "epoch   2/2"]
