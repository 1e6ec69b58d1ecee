"""The one exception type for user mistakes: click prints its message on one line, no traceback."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """Bad input. The message names the problem and the fix, in one line."""
