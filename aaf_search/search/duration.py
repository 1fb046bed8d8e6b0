"""Durations on the command line (``--timeout 90m``) and on the progress line (``1:30:00``)."""

from __future__ import annotations

import math
import re

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
FORMAT_HINT = "seconds, or a number with s, m, h or d (600, 90s, 30m, 1.5h)"
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``600``, ``90s``, ``30m``, ``1.5h`` or ``2d``; ``ValueError`` naming the format."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"] if match else math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"must be a positive duration in {FORMAT_HINT}, got '{text}'")
    return seconds


def clock_text(seconds: float) -> str:
    """``1:02:03`` for 3723 s (whole seconds, rounded down)."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
