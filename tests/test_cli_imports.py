"""A mistyped command is refused before torch is imported (importing it and torchvision takes seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs the command in a fresh interpreter (this test process has torch loaded) and reports what it imported.
PROBE = """
import sys
from aaf_search.cli import main
code = main(sys.argv[1:])
print(code, [name for name in ("torch", "torchvision") if name in sys.modules])
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--space", "lslu_depth", "--trials", "two"],  # argparse
        ["--space", "lslu_dpeth"],  # an unknown space
        ["--space", "lslu_depth", "--epochs", "0"],  # a number out of range
        ["train", "--config", "nope.yaml"],  # a config file that is not there
        ["train", "--config", "nope.yaml", "--epochs", "0"],
        ["report", "--storage", "journal:missing.log"],  # a storage that is not there
        ["robust", "--storage", "journal:missing.log"],
        ["studies", "--storage", "journal:missing.log"],
        ["robust", "--seeds", "42,x"],
    ],
)
def test_a_mistyped_command_is_refused_without_importing_torch(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.startswith("aaf-search")
