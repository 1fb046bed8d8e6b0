"""Every user mistake is one line naming the problem and the valid choices, exit code 2, and nothing written.

Each case runs the real command line in-process in a directory that holds a finished study and the input
files below; afterwards every file there must be byte-for-byte as it was and no file may have appeared.
The flag checks of ``search`` (unknown sampler, pruner, backend, ``--trials 0``, a study of another
space, ...) have their own table in ``tests/search/test_search_cli.py``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
import yaml
from faults import search_fakes

from aaf_search.cli import main
from aaf_search.search import SearchSettings, run_search
from aaf_search.search.storage import close_sqlite_storages

STORAGE = "sqlite:///runs/study.db"

GOOD_SPACE = """\
model: dnn2
params:
  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.01}
"""
LR = "  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.01}\n"

FILES = {
    "good.yaml": GOOD_SPACE,
    "not_yaml.yaml": "model: [unclosed\n",
    "wrong_type.yaml": "model: dnn2\nepochs: ten\nparams:\n" + LR,
    "out_of_range.yaml": "params:\n  - {name: opt/lr, target: optim.lr, type: float, low: 0.1, high: 0.01}\n",
    "unknown_model.yaml": "model: nope\nparams:\n" + LR,
    "unknown_activation.yaml": "base: {plan: [{select: all, activation: {family: nope}}]}\nparams:\n" + LR,
    "unknown_preset.yaml": "base: {plan: [{select: all, activation: {family: leaf, init: as_nothing}}]}\nparams:\n"
    + LR,
    "not_a_database.db": "these are not the bytes of a SQLite file\n",
    "not_a_journal.log": "nor of an Optuna journal\n",
}
"""The input files of the cases, written into the test's directory."""


def config_yaml(schema: int = 1, **changes: object) -> str:
    """A small trial config (the keys left out take their defaults) with ``changes`` made to it."""
    trial = {"model": "dnn2", "data": {"name": "digits"}, "epochs": 1, "batch_size": 64, **changes}
    return yaml.safe_dump({"schema_version": schema, "trial": trial})


CONFIGS = {
    "good_config.yaml": config_yaml(),
    # As export writes it: beside the trial, metadata that includes the trial's parameters.
    "exported.yaml": config_yaml().replace("schema_version: 1\n", "schema_version: 1\nparams: {opt/lr: 0.001}\n"),
    "newer_schema.yaml": config_yaml(schema=9),
    "negative_epochs.yaml": config_yaml(epochs=-2),
    "wrong_type_config.yaml": config_yaml(batch_size="many"),
    "unknown_key_config.yaml": config_yaml(modle="dnn2"),
    "unknown_optimizer.yaml": config_yaml(optim={"name": "adamw2"}),
    "missing_data.yaml": config_yaml(data={"name": "mnist", "root": "empty_root"}),
    "broken_config.yaml": "trial: [\n",
}

SPACE = ["search", "--storage", STORAGE, "--backend", "local", "--space"]
TRAIN = ["train", "--out", "runs/train", "--config"]
READ_ONLY_STUDY = "sqlite:///file:runs/study.db?immutable=1&uri=true"

CASES = [
    # Names that no registry knows: the message lists the valid ones.
    ([*SPACE, "good.yaml", "--model", "nope"], "unknown model 'nope'; choose one of: dnn2, dnn3"),
    ([*SPACE, "unknown_model.yaml"], "unknown model 'nope'; choose one of: dnn2"),
    ([*SPACE, "good.yaml", "--dataset", "nope"], "unknown data set 'nope'; valid names: digits, mnist"),
    ([*SPACE, "unknown_activation.yaml"], "unknown activation 'nope'; choose one of: aglu, ahaf, apa"),
    ([*SPACE, "unknown_preset.yaml"], "activation 'leaf' has no preset 'as_nothing'; its presets: as_relu"),
    (["models", "nope"], "unknown model 'nope'; choose one of: dnn2"),
    # Space files: not YAML, a wrong type, an empty range, absent, or a module that does not import.
    ([*SPACE, "not_yaml.yaml"], "space file 'not_yaml.yaml' is not valid YAML at line 2"),
    ([*SPACE, "wrong_type.yaml"], "space file 'wrong_type.yaml': 'epochs' must be an integer, got 'ten'"),
    ([*SPACE, "out_of_range.yaml"], "'high' (0.01) must be greater than 'low' (0.1)"),
    ([*SPACE, "absent.yaml"], "space file 'absent.yaml' does not exist"),
    # A trial config where a space file belongs, and the other way round: each names the right command.
    (
        [*SPACE, "good_config.yaml"],
        "space file 'good_config.yaml' is a trial config, not a space; train it with: aaf-search train --config",
    ),
    ([*TRAIN, "good.yaml"], "'good.yaml' is a space file, not a trial config; search it with: aaf-search --space"),
    (
        [*SPACE, "exported.yaml"],
        "space file 'exported.yaml' is a trial config, not a space; train it with: aaf-search train --config",
    ),
    # A Python space that is not a suggest(trial, defaults) function, or fails on its first sample.
    ([*SPACE, "os:getcwd"], "'os:getcwd' takes (), but a space function is called as suggest(trial, defaults)"),
    ([*SPACE, "os.path:join"], "space 'os.path:join' failed on a sample trial: TypeError: expected str"),
    ([*SPACE, "no_such_module:space"], "cannot import module 'no_such_module' for --space"),
    # Numbers out of range and resources this machine lacks.
    ([*SPACE, "good.yaml", "--epochs", "-3"], "--epochs must be > 0, got -3"),
    (
        [*SPACE, "good.yaml", "--cpus-per-trial", "0"],
        "--cpus-per-trial must be a whole number >= 1 with the local backend, got 0",
    ),
    (
        [*SPACE, "good.yaml", "--cpus-per-trial", "1.5"],
        "--cpus-per-trial must be a whole number >= 1 with the local backend, got 1.5",
    ),
    (
        [*SPACE, "good.yaml", "--cpus-per-trial", "999"],
        f"--cpus-per-trial 999 but this machine has {os.cpu_count()} CPU cores",
    ),
    ([*SPACE, "good.yaml", "--precision", "fp8"], "unknown precision 'fp8'; choose one of: fp32, bf16, fp16"),
    (
        ["search", "--space", "good.yaml", "--backend", "ray", "--gpus-per-trial", "999"],
        f"--gpus-per-trial 999 but this machine has {torch.cuda.device_count()} GPU(s)",
    ),
    ([*SPACE, "good.yaml", "--dataset", "mnist", "--data-root", "empty_root"], "data files not found: "),
    # Storages and clusters that cannot be used.
    ([*SPACE, "good.yaml", "--storage", "sqlite:///not_a_database.db"], "file is not a database"),
    ([*SPACE, "good.yaml", "--storage", "journal:not_a_journal.log"], "'not_a_journal.log' is not an Optuna journal"),
    (
        ["search", "--space", "good.yaml", "--backend", "ray", "--address", "127.0.0.1:1"],
        "Ray address '127.0.0.1:1' does not answer",
    ),
    (["export", "--storage", STORAGE, "--study", "nope"], "no study 'nope' in the storage; studies: trainable_zoo"),
    (["report", "--storage", STORAGE, "--study", "nope"], "no study 'nope' in the storage; studies: trainable_zoo"),
    (["export", "--storage", STORAGE, "--out", "folder.yaml"], "--out: 'folder.yaml' is a directory; name a file"),
    (["export", "--storage", STORAGE, "--trial", "1", "--rank", "2"], "--rank and --trial do not go together"),
    (["export", "--storage", STORAGE, "--trial", "1", "--robust"], "--trial and --robust do not go together"),
    (["export", "--storage", STORAGE, "--robust", "--out", "folder.yaml"], "'folder.yaml' is a directory"),
    (["dashboard", "--storage", "sqlite:///runs/absent.db"], "no storage at 'runs/absent.db'"),
    (["export", "--storage", "sqlite:///runs/absent.db"], "no storage at 'runs/absent.db'"),
    (["export", "--storage", "journal:runs/absent.log"], "no storage at 'runs/absent.log'"),
    (["report", "--storage", "sqlite:///runs/absent.db"], "no storage at 'runs/absent.db'"),
    (["robust", "--storage", "journal:runs/absent.log"], "no storage at 'runs/absent.log'"),
    # Trial configs: a newer schema, values out of range or of the wrong type, unknown keys and names.
    ([*TRAIN, "newer_schema.yaml"], "'newer_schema.yaml' has schema_version 9; this aaf-search reads up to 1"),
    ([*TRAIN, "negative_epochs.yaml"], "epochs must be >= 0, got -2"),
    ([*TRAIN, "wrong_type_config.yaml"], "batch_size must be an integer, got 'many'"),
    ([*TRAIN, "unknown_key_config.yaml"], "unknown key 'modle'; valid keys: model, data"),
    ([*TRAIN, "unknown_optimizer.yaml"], "optim.name must be one of adam, adamw, sgd, rmsprop; got 'adamw2'"),
    ([*TRAIN, "missing_data.yaml"], "data files not found: "),
    ([*TRAIN, "broken_config.yaml"], "'broken_config.yaml' is not valid YAML at line 2"),
    # A read-only URL (for a study in a directory the user cannot write) does not take a search's writes.
    (
        ["search", "--storage", READ_ONLY_STUDY, "--backend", "local", "--space", "good.yaml"],
        "the SQLite storage cannot be written here (attempt to write a readonly database): SQLite needs write "
        "access to the study's file and directory; to read a finished study from a directory you cannot write, "
        "use --storage 'sqlite:///file:PATH?mode=ro&immutable=1&uri=true'",
    ),
    ([*TRAIN, "latin1.yaml"], "'latin1.yaml' is not UTF-8 text (byte 0xe9 at offset 14); save it as UTF-8"),
    ([*SPACE, "latin1.yaml"], "space file 'latin1.yaml' is not UTF-8 text (byte 0xe9 at offset 14)"),
    ([*TRAIN, "absent.yaml"], "config file 'absent.yaml' does not exist"),
    ([*TRAIN, "aaf-runs/trainable_zoo"], "is a directory; YAML files in it: aaf-runs/trainable_zoo/best.yaml"),
    ([*SPACE, "folder.yaml"], "space file 'folder.yaml' is a directory"),
    (["report", "--storage", "runs.db"], "not a storage URL; for a SQLite file write sqlite:///runs.db"),
    # An output directory that cannot be created: refused before any work, not when the results are saved.
    ([*SPACE, "good.yaml", "--out", "good.yaml/run"], "--out: cannot create directory 'good.yaml/run' (Not a"),
    (["train", "--out", "good.yaml/run", "--config", "good_config.yaml"], "--out: cannot create directory"),
    (["report", "--storage", STORAGE, "--out", "good.yaml/report"], "--out: cannot create directory 'good.yaml/"),
    (["export", "--storage", STORAGE, "--out", "good.yaml/best.yaml"], "--out 'good.yaml/best.yaml': 'good.yaml' is"),
    (["robust", "--storage", STORAGE, "--backend", "local", "--out", "good.yaml"], "--out: 'good.yaml' is a file"),
    (["activations", "plot", "--out", "good.yaml/plots"], "--out: cannot create directory 'good.yaml/plots'"),
    (["activations", "plot", "cosluu"], "unknown activation 'cosluu'; choose one of: aglu"),
    (["activations", "plot", "--run", "good.yaml"], "'good.yaml' is not a run directory (it has no config.yaml)"),
    (["activations", "plot", "--run", "runs"], "'runs' is not a run directory (it has no config.yaml)"),
    (["studies", "--storage", "sqlite:///nothing.db"], "no storage at 'nothing.db'"),
    (["spaces", "--sample", "2"], "--sample needs a space: aaf-search spaces NAME --sample N"),
    (["spaces", "lslu_depth", "--sample", "0"], "--sample must be >= 1, got 0"),
    ([*TRAIN, "good_config.yaml", "--epochs", "0"], "--epochs must be >= 1, got 0"),
]


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The test's directory with a finished two-trial study and every input file of the table."""
    run_search(
        SearchSettings(space="trainable_zoo", trials=2, sampler="random", pruner="none", storage=STORAGE, epochs=1),
        runner=search_fakes().FakeRunner(),
    )
    close_sqlite_storages()  # as the command does when it ends: the write-ahead log goes into the file
    for name, text in {**FILES, **CONFIGS}.items():
        Path(name).write_text(text)
    Path("latin1.yaml").write_bytes("# learned by réseau\nmodel: dnn2\n".encode("latin-1"))
    Path("empty_root").mkdir()
    Path("folder.yaml").mkdir()
    return tmp_path


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(args[-2:]) for args, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    workspace: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = tree(workspace)
    capsys.readouterr()
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("aaf-search: error: ") and err.count("\n") == 1, err
    assert message in err
    assert tree(workspace) == before


def test_a_missing_database_driver_says_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import pymysql  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pymysql is installed here: no driver is missing")
    assert main(["--space", "trainable_zoo", "--storage", "mysql://aaf@127.0.0.1:1/aaf"]) == 2
    assert capsys.readouterr().err == (
        "aaf-search: error: cannot open storage 'mysql://aaf@127.0.0.1:1/aaf': "
        "its database driver is not installed: pip install pymysql\n"
    )
