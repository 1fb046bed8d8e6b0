"""The dashboard serves a study over HTTP on loopback and stops cleanly; bad storages are one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from aaf_search.analysis.dashboard import is_loopback, start_dashboard
from aaf_search.cli import main
from aaf_search.search.storage import StorageError, open_existing_storage

STOP_SECONDS = 5.0  # the brief's "stops within a few seconds"


def _make_study(storage: str | BaseStorage, name: str = "lslu_depth") -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for value in (0.91, 0.93):
        trial = study.ask()
        trial.report(value - 0.1, step=1)
        study.tell(trial, value)
    pruned = study.ask()
    pruned.report(0.5, step=1)
    study.tell(pruned, state=TrialState.PRUNED)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_serves_the_study_and_stops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aaf.db'}"
    _make_study(url)
    with start_dashboard(url, port=0) as server:  # port 0: the OS picks a free one
        assert server.url == f"http://127.0.0.1:{server.port}/dashboard"
        studies = _get_json(f"http://127.0.0.1:{server.port}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["lslu_depth"]
        detail = _get_json(f"http://127.0.0.1:{server.port}/api/studies/{studies[0]['study_id']}")
        states = sorted(t["state"] for t in detail["trials"])
        assert states == ["Complete", "Complete", "Pruned"]
        started = time.monotonic()
    assert time.monotonic() - started < STOP_SECONDS
    with pytest.raises(OSError):  # the port is closed again
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/studies", timeout=2)


def test_every_interface_is_shown_as_this_machines_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aaf.db'}"
    _make_study(url)
    with start_dashboard(url, host="0.0.0.0", port=0) as server:  # 0.0.0.0 is no address a browser opens
        assert server.url == f"http://{socket.gethostname()}:{server.port}/dashboard"


def test_reads_a_journal_storage(tmp_path: Path) -> None:
    path = tmp_path / "aaf.journal"
    _make_study(JournalStorage(JournalFileBackend(str(path))), name="journal_study")
    with start_dashboard(f"journal:{path}", port=0) as server:
        studies = _get_json(f"http://127.0.0.1:{server.port}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["journal_study"]


def test_missing_storage_files_are_user_errors(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'none.db'}", f"journal:{tmp_path / 'none.journal'}"):
        with pytest.raises(StorageError, match="no storage at"):
            open_existing_storage(url)
    assert not (tmp_path / "none.db").exists()  # nothing was created


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no storage at" in err
    assert main(["dashboard", "--storage", "postgresql+nosuchdriver://u:secret@localhost/db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open storage" in err and "secret" not in err
    url = f"sqlite:///{tmp_path / 'aaf.db'}"
    _make_study(url)
    with start_dashboard(url, port=0) as busy:
        assert main(["dashboard", "--storage", url, "--port", str(busy.port)]) == 2
        assert "pick another --port" in capsys.readouterr().err
    # 203.0.113.7 (a documentation address) is no address of this machine: the host is what to change
    assert main(["dashboard", "--storage", url, "--host", "203.0.113.7", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give --host a name or address of this machine" in err


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


@pytest.mark.slow
def test_cli_process_serves_and_stops_on_interrupt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aaf.db'}"
    _make_study(url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "aaf_search", "dashboard", "--storage", url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A suite started in the background inherits SIGINT ignored; Ctrl-C must reach the dashboard.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "optuna-dashboard on URL: open http://127.0.0.1:PORT/dashboard ..."
        assert "open http://127.0.0.1:" in line, line + (process.stderr.read() if process.stderr else "")
        dashboard_url = line.split("open ", 1)[1].split()[0]
        api = dashboard_url.replace("/dashboard", "/api/studies")
        assert [s["study_name"] for s in _get_json(api)["study_summaries"]] == ["lslu_depth"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
