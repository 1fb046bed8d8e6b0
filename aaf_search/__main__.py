from __future__ import annotations

import sys

from aaf_search.cli import console_main

sys.exit(console_main())
