"""On/off switches read from the environment (``AAF_MALLOC_TUNING=0``, ``AAF_ACTIVATION_COMPILE=off``, ...)."""

from __future__ import annotations

import os

OFF_VALUES = ("0", "false", "no", "off")


def switched_on(name: str) -> bool:
    """Whether the switch ``name`` is on: it is unless set to 0, false, no or off (any case)."""
    return os.environ.get(name, "1").strip().lower() not in OFF_VALUES
