"""Durations on the command line (``--timeout 90m``) and on the progress line (``1:30:00``)."""

from __future__ import annotations

import math
import re

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
FORMAT_HINT = "seconds, or numbers with s, m, h or d (600, 90s, 30m, 1h30m, 1.5h)"
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"{_NUMBER}|(?:{_NUMBER}\s*[smhd]\s*)+")
_PART = re.compile(rf"({_NUMBER})\s*([smhd])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``600``, ``90s``, ``30m``, ``1h30m``, ``1.5h`` or ``2d``; ``ValueError`` naming
    the format."""
    clean = text.strip().lower()
    if not _DURATION.fullmatch(clean):
        seconds = math.nan
    elif clean[-1].isdigit() or clean[-1] == ".":
        seconds = float(clean)
    else:
        seconds = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(clean))
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"must be a positive duration in {FORMAT_HINT}, got '{text}'")
    return seconds


def clock_text(seconds: float) -> str:
    """``1:02:03`` for 3723 s (whole seconds, rounded down)."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
