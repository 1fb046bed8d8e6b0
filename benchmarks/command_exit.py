"""How long the ``aaf-search`` commands take to exit once their work is done.

Runs each command in fresh processes, alternating two entries: ``aaf_search.cli.main`` as a plain
script would call it, and ``aaf_search.cli.console_main`` (what the ``aaf-search`` executable runs:
``main``, then ``gc.freeze()`` so the interpreter's last collections skip the imported libraries'
objects). Each process notes the moment its entry returned; the exit is the time from then to the
process's end. Commands: a one-trial search (local backend), ``studies``, ``spaces``, ``models``,
``export`` and ``report`` of a small study this script makes first in a temporary directory.

    python benchmarks/command_exit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ENTRIES = ("main", "console_main")
SEARCH = ["--space", "lincomb_bases", "--epochs", "1", "--backend", "local"]

# Runs one entry with the command's arguments and writes time.time() at its return to $RETURNED_AT.
RUNNER = """
import os, sys, time
from aaf_search import cli
entry = getattr(cli, sys.argv[1])
sys.argv = ["aaf-search", *sys.argv[2:]]
code = entry() if entry is cli.console_main else entry(sys.argv[1:])
with open(os.environ["RETURNED_AT"], "w") as f:
    f.write(repr(time.time()))
sys.exit(code)
"""


def timed_run(entry: str, args: list[str], workdir: Path) -> tuple[float, float]:
    """(seconds from spawn to the entry's return, seconds from its return to the process's end)."""
    stamp = workdir / "returned_at"
    stamp.unlink(missing_ok=True)
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, entry, *args],
        cwd=workdir,
        env={**os.environ, "RETURNED_AT": str(stamp)},
        capture_output=True,
        text=True,
    )
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"aaf-search {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    returned = float(stamp.read_text())
    return returned - started, ended - returned


def commands(storage: str, tag: str) -> dict[str, list[str]]:
    """Each command's arguments; ``tag`` names what a run makes (each search its own study and directory)."""
    common = ["--storage", storage]
    return {
        "search (1 trial)": [*SEARCH, "--trials", "1", "--study", f"search_{tag}", "--out", f"search_{tag}", *common],
        "studies": ["studies", *common],
        "spaces": ["spaces"],
        "models": ["models"],
        "export": ["export", "--study", "base", "--out", f"best_{tag}.yaml", *common],
        "report": ["report", "--study", "base", *common],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per command and entry")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} ({torch.backends.cpu.get_cpu_capability()} kernels), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        storage = f"sqlite:///{workdir / 'aaf.db'}"
        timed_run("main", [*SEARCH, "--trials", "2", "--study", "base", "--out", "base", "--storage", storage], workdir)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for repeat in range(args.repeats):
            # Alternate which entry goes first, so neither always meets a warmer page cache.
            for entry in ENTRIES if repeat % 2 == 0 else ENTRIES[::-1]:
                for name, command in commands(storage, f"{entry}_{repeat}").items():
                    times.setdefault((name, entry), []).append(timed_run(entry, command, workdir))
    print(f"medians of {args.repeats} processes per cell; exit: from the entry's return to the process's end")
    print(f"{'command':<18} {'main: run':>10} {'exit':>7} {'console_main: run':>18} {'exit':>7} {'total ratio':>12}")
    for name in commands(storage, ""):
        plain = times[(name, "main")]
        frozen = times[(name, "console_main")]
        run_plain, exit_plain = (statistics.median(t[i] for t in plain) for i in (0, 1))
        run_frozen, exit_frozen = (statistics.median(t[i] for t in frozen) for i in (0, 1))
        ratio = (run_frozen + exit_frozen) / (run_plain + exit_plain)
        print(
            f"{name:<18} {run_plain:>9.2f}s {exit_plain:>6.2f}s {run_frozen:>17.2f}s {exit_frozen:>6.2f}s "
            f"{ratio:>11.2f}x"
        )


if __name__ == "__main__":
    main()
