"""``python search.py --space X`` is the same as ``aaf-search --space X``."""

from __future__ import annotations

import sys

from aaf_search.cli import console_main

if __name__ == "__main__":
    sys.exit(console_main())
