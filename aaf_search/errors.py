"""The base of every error caused by user input.

The CLI prints a :class:`UserError` as one line and exits with code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user asked for; the message names the problem and the valid choices."""
