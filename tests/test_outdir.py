"""The output-directory check: refuses what cannot become a writable directory and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaf_search.errors import UserError
from aaf_search.outdir import check_out_dir


def test_a_missing_directory_passes_and_is_not_left_behind(tmp_path: Path) -> None:
    check_out_dir(tmp_path / "runs" / "nested" / "deeper")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_passes_and_keeps_its_contents(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("results")
    check_out_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_a_file_in_the_way_is_named(tmp_path: Path) -> None:
    (tmp_path / "best.yaml").write_text("trial: {}\n")
    with pytest.raises(UserError, match=r"^--out: '.*best.yaml' is a file, not a directory$"):
        check_out_dir(tmp_path / "best.yaml")
    under_a_file = r"^run directory: cannot create directory '.*best.yaml/run' \(Not a directory\)$"
    with pytest.raises(UserError, match=under_a_file):
        check_out_dir(tmp_path / "best.yaml" / "run", "run directory")
    assert [p.name for p in tmp_path.iterdir()] == ["best.yaml"]
