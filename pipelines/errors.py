"""What the library says to its user: one exception type for their mistakes, one way to note.

Library code never imports click (an import-linter contract checks it): the commands in
pipelines.cli turn a UserError into click's one line with exit status 1, no traceback, and a
note goes to stderr as one 'note:' line.
"""

from __future__ import annotations

import sys


class UserError(Exception):
    """Bad input. The message names the problem and the fix, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def note(message: str) -> None:
    """Say something the user should know but that stops nothing (a repair, a skip)."""
    print(f"note: {message}", file=sys.stderr, flush=True)
