from __future__ import annotations

import sys

from aaf_search.cli import main

sys.exit(main())
