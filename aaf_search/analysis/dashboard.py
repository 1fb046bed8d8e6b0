"""Serve optuna-dashboard on a study storage, with a server object that can be stopped.

``optuna_dashboard.run_server`` blocks inside bottle's ``run`` and offers no way to stop it from another
thread. Here the dashboard's WSGI app (``optuna_dashboard.wsgi``) is served by the same threaded
``wsgiref`` server its own CLI uses, but we keep the server object: ``serve_forever`` in the CLI,
``shutdown`` from a test or a signal handler. Port 0 asks the OS for a free port (tests use that).

The dashboard has no authentication, so it binds to loopback unless the user names another host.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.storages import BaseStorage

from aaf_search.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # optuna-dashboard's own default
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # listen on every interface: not an address a browser can open


class DashboardError(UserError):
    """The dashboard cannot start: its address is taken or is not this machine's."""


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    # Request threads must not keep the process alive after shutdown (the dashboard's browser tab polls).
    daemon_threads = True


class _ThreadedServer6(_ThreadedServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    # The browser polls the API every few seconds; one log line per request would bury the URL line.
    def log_message(self, format: str, *args: Any) -> None:
        pass


def is_loopback(host: str) -> bool:
    """``True`` for 127.0.0.0/8, ::1 and ``localhost``: addresses other machines cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen_advice(exc: OSError) -> str:
    """Which option to change after a failed bind: the host for a name or address not of this machine."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return "give --host a name or address of this machine (127.0.0.1, 0.0.0.0 for every interface)"
    return "pick another --port"


class DashboardServer:
    """A running (bound, not yet serving) dashboard; use :meth:`serve_forever` or :meth:`start_thread`.

    As a context manager it serves in a background thread and stops on exit.
    """

    def __init__(self, storage: BaseStorage, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        import optuna_dashboard

        app = optuna_dashboard.wsgi(storage)
        server_class = _ThreadedServer6 if ":" in host else _ThreadedServer
        try:
            self._server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        except OSError as exc:
            reason = exc.strerror or exc
            raise DashboardError(f"cannot listen on {host}:{port}: {reason}; {_listen_advice(exc)}") from exc
        except UnicodeError as exc:  # socket.getaddrinfo on an unencodable host name
            raise DashboardError(f"cannot listen on '{host}': {exc}") from exc
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the OS's pick when 0 was asked for)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Where a browser finds the dashboard; for a wildcard address (every interface), this machine's name."""
        host = socket.gethostname() if self.host in WILDCARD_HOSTS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/dashboard"

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called from another thread (or KeyboardInterrupt)."""
        self._server.serve_forever(poll_interval=0.2)

    def start_thread(self) -> DashboardServer:
        """Serve in a daemon thread and return at once."""
        self._thread = threading.Thread(target=self.serve_forever, name="aaf-dashboard", daemon=True)
        self._thread.start()
        return self

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and wait for the serving thread (if any)."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to return, so only call it when something serves.
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        return self.start_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()


def start_dashboard(url: str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> DashboardServer:
    """Open the storage at ``url`` and bind the dashboard to ``host:port`` (not yet serving)."""
    from aaf_search.search.storage import open_existing_storage

    return DashboardServer(open_existing_storage(url), host=host, port=port)
