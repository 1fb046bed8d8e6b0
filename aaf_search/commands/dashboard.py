"""``aaf-search dashboard [--storage URL] [--port P] [--host H]``: browse a search's study in optuna-dashboard."""

from __future__ import annotations

import argparse
import sys

HELP = "Serve optuna-dashboard on a study storage (loopback only unless --host says otherwise)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aaf_search.analysis.dashboard import DEFAULT_HOST, DEFAULT_PORT
    from aaf_search.search.storage import DEFAULT_STORAGE

    add = parser.add_argument
    add("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL or journal:PATH (default: {DEFAULT_STORAGE})")
    add("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT}; 0: any free one)")
    add("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST}; the dashboard has no login)")


def run(args: argparse.Namespace) -> int:
    from aaf_search.analysis.dashboard import DashboardError, is_loopback, start_dashboard
    from aaf_search.search.storage import redact

    if not 0 <= args.port <= 65535:
        raise DashboardError(f"--port must be in 0..65535, got {args.port}")
    server = start_dashboard(args.storage, host=args.host, port=args.port)
    if not is_loopback(args.host):
        print(
            f"aaf-search: warning: serving on {args.host}, reachable from other machines, without a login",
            file=sys.stderr,
        )
    print(f"optuna-dashboard on {redact(args.storage)}: open {server.url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("aaf-search: dashboard stopped", file=sys.stderr)
    finally:
        server.shutdown()
    return 0
