"""Fixtures of the reliability suite: a directory per test, and a throw-away PostgreSQL server.

The server is started once for the session from Debian's ``postgresql`` package (``initdb`` into a
temporary directory, ``pg_ctl start`` on a free loopback port, as the ``postgres`` user when the tests run
as root, since the server refuses to run as root). Tests that need it are skipped, with the reason, where
the binaries or the ``psycopg`` driver are missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian keeps the server binaries off PATH
PG_START_SECONDS = 60


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test in its own directory: the default storage and aaf-runs/ land there."""
    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return tmp_path


def _pg_bin() -> Path | None:
    candidates = sorted(glob.glob(PG_BIN_GLOB))
    if candidates:
        return Path(candidates[-1])
    found = shutil.which("pg_ctl")  # another distribution's layout: the binaries on PATH
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://aaf@127.0.0.1:PORT/postgres`` of a server that lives for the test session."""
    pytest.importorskip("psycopg", reason="psycopg is missing: pip install -e '.[dev]' installs it")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql); skipping the RDB server tests")
    as_root = os.geteuid() == 0
    # Not under pytest's tmp dir: that one is private to root, and the server runs as 'postgres'.
    home = Path(tempfile.mkdtemp(prefix="aaf-pg-"))
    data = home / "data"
    if as_root:
        shutil.chown(home, user="postgres")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    port = _free_port()

    def run(*args: str) -> None:
        try:
            subprocess.run(
                [*prefix, *args], check=True, capture_output=True, text=True, cwd=home, timeout=PG_START_SECONDS
            )
        except subprocess.CalledProcessError as exc:
            raise OSError(f"{Path(args[0]).name} failed: {(exc.stderr or exc.stdout).strip()[-300:]}") from exc

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "--username", "aaf", "--auth", "trust", "--no-sync")
        # Loopback TCP only, no Unix socket in a system directory; fsync off: a throw-away server.
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' -c fsync=off"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start")
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"could not start a throw-away PostgreSQL server: {exc}")
    try:
        yield f"postgresql://aaf@127.0.0.1:{port}/postgres"  # the database initdb creates
    finally:
        stop = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True, cwd=home, timeout=PG_START_SECONDS)
        shutil.rmtree(home, ignore_errors=True)
