"""Files that try to run code are refused, and their code never runs.

Each file below carries a payload that, if executed, would create ``pwned`` in the test's directory:
a pickled ``os.system`` call (cached weights, a CIFAR batch) or a YAML tag that calls it (a space file, a
trial config). Loading must fail with a one-line error and leave no ``pwned`` behind.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from aaf_search.cli import main
from aaf_search.config import PretrainConfig, TrialConfig
from aaf_search.errors import UserError
from aaf_search.trials.data import load_data
from aaf_search.trials.runner import pretrained_state
from aaf_search.trials.sources import DataError, read_cifar_batch

PAYLOAD = "touch pwned"
EVIL_TAG = f'!!python/object/apply:os.system ["{PAYLOAD}"]'


class Payload:
    """Pickles as a call of ``os.system(PAYLOAD)``, the classic pickle exploit."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (PAYLOAD,))


@pytest.fixture(autouse=True)
def never_pwned() -> object:
    yield
    assert not Path("pwned").exists(), "a payload ran"


def test_cached_pretrained_weights_are_loaded_as_tensors_only(tmp_path: Path) -> None:
    config = TrialConfig(model="dnn2", epochs=1, device="cpu")
    pretrain = PretrainConfig(epochs=1, cache_dir=str(tmp_path / "cache"))
    data = load_data(config.data)
    # The cache file is found by name: write one where pretrained_state looks, holding the payload.
    pretrained_state(config, pretrain, data)
    (cached,) = (tmp_path / "cache").glob("*.pt")
    torch.save({"fc1.weight": Payload()}, cached)
    with pytest.raises(UserError, match=r"cannot be loaded as plain tensors .*delete the file"):
        pretrained_state(config, pretrain, data)


def test_a_cifar_batch_that_names_a_callable_is_refused(tmp_path: Path) -> None:
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"asks to load posix\.system, which is refused"):
        read_cifar_batch(batch, "labels")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--space", "evil.yaml", "--backend", "local"], f"model: {EVIL_TAG}\nparams: []\n"),
        (["train", "--config", "evil.yaml"], f"schema_version: 1\ntrial: {EVIL_TAG}\n"),
    ],
)
def test_yaml_tags_that_would_run_code_are_refused(
    args: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("evil.yaml").write_text(text)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "uses the tag '!!python/object/apply:os.system' at line" in err
    assert err.rstrip().endswith("which is refused: only plain YAML data is read, nothing in it is run")


@pytest.mark.parametrize(
    ("trial", "message"),
    [("{model: 'os:system'}", "unknown model 'os:system'"), ("{data: {name: 'os:system'}}", "unknown data set")],
)
def test_a_config_naming_a_module_imports_nothing(trial: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Only --space package.module:function imports code, because the user typed it; in a config file a
    # module:function is just a name that no registry knows.
    Path("config.yaml").write_text(f"schema_version: 1\ntrial: {trial}\n")
    assert main(["train", "--config", "config.yaml"]) == 2
    assert capsys.readouterr().err.startswith(f"aaf-search: error: {message}")
