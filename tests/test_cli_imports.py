"""A mistyped command is refused before torch is imported, and only ``tv:`` models import torchvision
(importing torch takes over a second, torchvision over a second more)."""

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
        ["--space", "lslu_depth", "--sampler", "tp"],  # a name from a table
        ["--space", "lslu_depth", "--pruner", "asa"],
        ["--space", "lslu_depth", "--backend", "rey"],
    ],
)
def test_a_mistyped_command_is_refused_without_importing_torch(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.startswith("aaf-search")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["models"], 0),
        (["models", "vanillanet"], 0),
        (["spaces", "lslu_depth"], 0),
        (["--space", "lslu_depth", "--model", "resnt20"], 2),  # the pre-flight's model check
    ],
)
def test_commands_without_a_torchvision_model_do_not_import_torchvision(
    args: list[str], code: int, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.stdout.splitlines()[-1] == f"{code} ['torch']", done.stderr


def test_a_torchvision_model_imports_torchvision(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "models", "tv:resnet18"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.stdout.splitlines()[-1] == "0 ['torch', 'torchvision']", done.stderr
