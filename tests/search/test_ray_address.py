"""``--address`` is checked to be Ray's before Ray joins it: ``ray.init`` against another server's port
blocks for good in Ray's C++ client (and ignores Ctrl-C), so such a port must be refused in seconds, in
one line. Each test serves one kind of reply on a local port; none starts Ray."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from aaf_search.cli import main
from aaf_search.errors import UserError
from aaf_search.search import ray_backend
from aaf_search.search.ray_backend import HTTP2_SETTINGS_HEADER, check_reachable

Reply = Callable[[socket.socket], None]


def web_server(connection: socket.socket) -> None:
    connection.recv(1024)
    connection.sendall(b"HTTP/1.0 400 Bad request\r\n\r\n<!DOCTYPE html>")


def hangs_up(connection: socket.socket) -> None:
    connection.recv(1024)


def grpc_server(connection: socket.socket) -> None:
    connection.sendall(HTTP2_SETTINGS_HEADER)
    connection.recv(1024)


def silent(connection: socket.socket) -> None:
    while connection.recv(1024):  # reads what comes until the client gives up and closes
        pass


@contextmanager
def serving(reply: Reply) -> Iterator[str]:
    """A server on a free local port that answers one connection with ``reply``; yields its address."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_one() -> None:
        connection, _ = listener.accept()
        with connection:
            reply(connection)

    thread = threading.Thread(target=answer_one, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        thread.join(timeout=5)
        listener.close()


def search_error(address: str, capsys: pytest.CaptureFixture[str]) -> str:
    args = ["--space", "trainable_zoo", "--backend", "ray", "--address", address, "--storage", "sqlite:///runs/s.db"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert not Path("runs").exists()  # refused before the storage was opened
    return err


def test_a_web_server_port_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(web_server) as address:
        err = search_error(address, capsys)
    assert err.startswith(f"aaf-search: error: Ray address '{address}' is not a Ray cluster (it replied b'HTTP/1.0 ')")
    assert "ray start --head" in err


def test_a_port_that_hangs_up_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(hangs_up) as address:
        err = search_error(address, capsys)
    assert "is not a Ray cluster (it closed the connection without a reply)" in err


def test_a_port_that_never_replies_times_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_backend, "CONNECT_TIMEOUT", 0.2)
    with serving(silent) as address:
        err = search_error(address, capsys)
    assert f"Ray address '{address}' does not answer (timed out)" in err


def test_a_port_that_answers_http2_passes() -> None:
    with serving(grpc_server) as address:
        check_reachable(address)  # no UserError; Ray's own head node is checked in test_search_ray.py


def test_with_tls_only_the_connection_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A TLS cluster would answer the plain HTTP/2 greeting with a TLS alert, so it is not sent.
    monkeypatch.setenv("RAY_USE_TLS", "1")
    with serving(silent) as address:
        check_reachable(address)
    monkeypatch.setenv("RAY_USE_TLS", "0")
    with serving(web_server) as address, pytest.raises(UserError, match="is not a Ray cluster"):
        check_reachable(address)
