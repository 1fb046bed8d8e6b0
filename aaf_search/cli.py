"""Command-line entry: a table of verbs, each in its own module under ``aaf_search.commands``.

``aaf-search --space NAME`` (no verb) is the same as ``aaf-search search --space NAME``. Every user
mistake ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import shlex
import sys
from collections.abc import Sequence
from typing import Protocol

from aaf_search.errors import UserError, explain_disk_full


class Command(Protocol):
    """What a verb module provides."""

    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, str] = {
    "search": "aaf_search.commands.search",
    "train": "aaf_search.commands.train",
    "export": "aaf_search.commands.export",
    "robust": "aaf_search.commands.robust",
    "report": "aaf_search.commands.report",
    "studies": "aaf_search.commands.studies",
    "spaces": "aaf_search.commands.spaces",
    "activations": "aaf_search.commands.activations",
    "models": "aaf_search.commands.models",
    "dashboard": "aaf_search.commands.dashboard",
}
"""Verb -> module; a module is imported only when its verb runs, so ``--help`` stays fast."""

DEFAULT_VERB = "search"

RESUMABLE = ("search", "robust", "train")
"""Verbs that continue from their storage (train: from its checkpoint): after Ctrl-C, the same command
again resumes them."""


class UsageError(UserError):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _load(verb: str) -> Command:
    module: Command = importlib.import_module(COMMANDS[verb])
    return module


def build_parser(verb: str) -> argparse.ArgumentParser:
    command = _load(verb)
    parser = _Parser(prog=f"aaf-search {verb}", description=command.HELP)
    command.add_arguments(parser)
    return parser


def _top_help() -> str:
    lines = ["usage: aaf-search [VERB] [options]   (no verb: search)", "", "verbs:"]
    for verb in COMMANDS:
        lines.append(f"  {verb:<12} {_load(verb).HELP.splitlines()[0]}")
    lines += ["", "aaf-search VERB --help shows a verb's options; aaf-search --space lslu_depth runs a search."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0
    if argv and argv[0] == "--version":
        from aaf_search import __version__

        print(f"aaf-search {__version__}")
        return 0
    command_line = ["aaf-search", *argv]
    verb = argv.pop(0) if argv and argv[0] in COMMANDS else DEFAULT_VERB
    if argv and not argv[0].startswith("-") and verb == DEFAULT_VERB and argv[0] not in COMMANDS:
        print(f"aaf-search: unknown verb '{argv[0]}'; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        args = build_parser(verb).parse_args(argv)
        return _load(verb).run(args)
    except UserError as exc:
        print(f"aaf-search: error: {exc}" if not isinstance(exc, UsageError) else str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aaf-search: interrupted", file=sys.stderr)
        if verb in RESUMABLE:
            retry = verb == "search" and "--retry-failed" not in command_line
            again = " (add --retry-failed to carry the interrupted trials on from their checkpoints)" if retry else ""
            resume = f"aaf-search: to resume, run the same command again: {shlex.join(command_line)}{again}"
            print(resume, file=sys.stderr)
        return 130
    except Exception as exc:
        # Imported here: the storage module imports Optuna, which --help and the other verbs' parsing skip.
        from aaf_search.search.storage import explain_locked, explain_readonly

        advice = explain_locked(exc) or explain_readonly(exc) or explain_disk_full(exc)
        if advice is None:
            raise  # not the user's doing: a bug keeps its traceback
        print(f"aaf-search: error: {advice}", file=sys.stderr)
        return 2
    finally:
        storage = sys.modules.get("aaf_search.search.storage")  # loaded only by verbs that opened a storage
        if storage is not None:
            storage.close_sqlite_storages()


def console_main() -> int:
    """The ``aaf-search`` executable: :func:`main`, then a quick exit.

    Why: at exit the interpreter's last garbage collections walk every object the command's imports
    made (torch, torchvision, Optuna, Ray: millions), 0.3-1.8 s after the command's last line on the
    development machine. Freezing the heap once the command is done takes those objects out of the
    collector's reach. atexit handlers (Ray's shutdown, Inductor's worker pool) still run, and every
    file the commands write is closed before they return. Tests call :func:`main`, which leaves the
    heap alone.
    """
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
