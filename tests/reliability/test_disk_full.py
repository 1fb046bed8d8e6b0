"""A full disk: one line that says so, exit code 2, and every file either complete or as it was."""

from __future__ import annotations

import errno
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from faults import search_fakes

from aaf_search.cli import main
from aaf_search.config import TrialConfig, save_yaml
from aaf_search.errors import explain_disk_full
from aaf_search.search import SearchSettings, run_search
from aaf_search.search.storage import close_sqlite_storages
from aaf_search.trials import checkpoint

STORAGE = "sqlite:///runs/study.db"


def disk_full(path: Path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_export_on_a_full_disk_keeps_the_previous_export(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_search(
        SearchSettings(space="trainable_zoo", trials=2, sampler="random", pruner="none", storage=STORAGE, epochs=1),
        runner=search_fakes().FakeRunner(),
    )
    close_sqlite_storages()
    assert main(["export", "--storage", STORAGE, "--out", "best.yaml"]) == 0
    before = Path("best.yaml").read_bytes()
    capsys.readouterr()

    def write_half_then_fail(self: Path, text: str, *args: Any, **kwargs: Any) -> int:
        with self.open("w") as handle:
            handle.write(text[: len(text) // 2])
        raise disk_full(self)

    monkeypatch.setattr(Path, "write_text", write_half_then_fail)
    assert main(["export", "--storage", STORAGE, "--out", "best.yaml", "--rank", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aaf-search: error: no space left on the device writing 'best.yaml.")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert Path("best.yaml").read_bytes() == before
    assert not list(Path().glob("*.tmp"))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, where every write fails with ENOSPC")
@pytest.mark.parametrize("failing", ["checkpoint.pt", "model.pt"])
def test_train_on_a_full_disk_leaves_no_partial_file(
    failing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(checkpoint, "SAVE_TIME_SHARE", math.inf)  # a checkpoint after epoch 1 (none after 2)
    save_yaml("good.yaml", TrialConfig(model="dnn2", epochs=2))
    path_open = Path.open

    def open_on_a_full_disk(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if not (self.name.startswith(failing) and "w" in mode):
            return path_open(self, mode, *args, **kwargs)
        path_open(self, mode).close()  # the file is made, as on a full disk; its writes fail in the kernel
        return open("/dev/full", mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_on_a_full_disk)
    assert main(["train", "--config", "good.yaml", "--out", "run", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"aaf-search: error: no space left on the device writing 'run/{failing}.")
    # No partial file and no temporary one; the checkpoint of the unfinished run stays for the rerun.
    assert sorted(p.name for p in Path("run").iterdir()) == ([] if failing == "checkpoint.pt" else ["checkpoint.pt"])


def test_a_full_sqlite_storage_is_explained_through_the_exception_chain() -> None:
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as exc:
            raise RuntimeError("storage write failed") from exc
    except RuntimeError as chained:
        advice = explain_disk_full(chained)
    assert advice is not None and "database or disk is full" in advice and "kept" in advice
    assert explain_disk_full(OSError(errno.EACCES, "Permission denied", "x")) is None
    assert explain_disk_full(RuntimeError("disk I/O error")) is None
