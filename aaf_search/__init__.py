"""aaf-search: search over trainable activation functions in PyTorch networks."""

from __future__ import annotations

__version__ = "0.1.0"
