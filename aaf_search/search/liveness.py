"""Who runs a trial, and whether that process is still alive: the rule for "left RUNNING by a dead run".

Every trial records its owner when it starts (:func:`owner_record`: host, boot id, pid and the process's
start time) and a heartbeat (unix time) at its start and after an epoch, at most every
:data:`HEARTBEAT_SECONDS`. A search that starts on a study decides for each RUNNING trial with
:func:`is_stale`:

- owner on this machine (same host name and boot id): stale exactly when that process is gone. The
  start time guards against a recycled pid; a different boot id means the machine rebooted since.
- owner on another machine: its liveness cannot be checked, so it is stale once its heartbeat is older
  than :data:`FOREIGN_GRACE_SECONDS`.
- no owner record (an older aaf-search, or a trial asked by other code): stale once it is older than
  :data:`OWNERLESS_GRACE_SECONDS`; the grace covers the instant between a trial's creation and its
  owner record, when another process must not take a live trial for a dead one.

Optuna's own heartbeat exists only for RDB storages and only for trials run through ``study.optimize``;
this record works for every storage (journal files too) and for the Ray backend, whose driver asks the
trials.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

ATTR_OWNER = "owner"
ATTR_HEARTBEAT = "heartbeat"

HEARTBEAT_SECONDS = 60.0  # how often a running trial's heartbeat is written (after an epoch, at most this often)
FOREIGN_GRACE_SECONDS = 2 * 3600  # an epoch longer than this on another machine would be taken for dead
OWNERLESS_GRACE_SECONDS = 60  # far longer than the two storage writes between a trial's creation and its owner

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@lru_cache(maxsize=1)
def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:  # not Linux: the host name alone identifies the machine
        return None


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or ``None`` when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces and parentheses, so count from its closing ')'.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def owner_record() -> dict[str, Any]:
    """This process as a trial's owner."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "started": process_start(pid)}


def this_process() -> str:
    """``host:pid``: this process among those that may share a study."""
    return f"{socket.gethostname()}:{os.getpid()}"


def same_machine(owner: Mapping[str, Any]) -> bool:
    return owner.get("host") == socket.gethostname()


def process_alive(owner: Mapping[str, Any]) -> bool:
    """Whether the process ``owner`` names (on this host) is still the one that started the trial."""
    if owner.get("boot") != _boot_id():
        return False  # the machine rebooted since: every process of that boot is gone
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    started = owner.get("started")
    return started is None or process_start(pid) in (started, None)


def is_stale(user_attrs: Mapping[str, Any], datetime_start: datetime | None, now: float | None = None) -> bool:
    """Whether a RUNNING trial with these attrs has nobody left to finish it (the rule in the module docstring)."""
    now = time.time() if now is None else now
    owner = user_attrs.get(ATTR_OWNER)
    if isinstance(owner, Mapping):
        if same_machine(owner):
            return not process_alive(owner)
        heartbeat = user_attrs.get(ATTR_HEARTBEAT)
        last = float(heartbeat) if isinstance(heartbeat, int | float) else _timestamp(datetime_start, now)
        return now - last > FOREIGN_GRACE_SECONDS
    return now - _timestamp(datetime_start, now) > OWNERLESS_GRACE_SECONDS


def describe(owner: Any) -> str:
    """``pid 123 on host`` for messages."""
    if not isinstance(owner, Mapping):
        return "an unknown process"
    return f"pid {owner.get('pid')} on {owner.get('host')}"


def _timestamp(moment: datetime | None, default: float) -> float:
    # Optuna stores naive local times (datetime.now()), which .timestamp() reads as local time.
    return moment.timestamp() if moment is not None else default
