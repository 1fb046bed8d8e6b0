"""Suite-wide defaults.

The activations run the eager reference implementation unless a test selects another, so that no test
pays for ``torch.compile`` by accident (the default "auto" compiles fused kernels). ``setdefault``: running
``AAF_ACTIVATION_IMPL=fused AAF_ACTIVATION_COMPILE=0 pytest`` puts the whole suite through the fused path.
"""

from __future__ import annotations

import os

os.environ.setdefault("AAF_ACTIVATION_IMPL", "eager")
