"""The ``aaf-search`` executable runs ``console_main``: ``main``'s exit code, then a frozen heap, so the
interpreter's exit skips collecting the millions of objects torch and its neighbours made."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from aaf_search.cli import console_main


def test_the_executable_is_console_main() -> None:
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '\naaf-search = "aaf_search.cli:console_main"\n' in pyproject


@pytest.mark.parametrize(("args", "code"), [(["--version"], 0), (["--space", "lslu_dpeth"], 2)])
def test_console_main_returns_mains_code_and_freezes_the_heap(
    args: list[str], code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["aaf-search", *args])
    assert gc.get_freeze_count() == 0
    try:
        assert console_main() == code
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process goes on
    captured = capsys.readouterr()
    assert (captured.out if code == 0 else captured.err).startswith("aaf-search")
