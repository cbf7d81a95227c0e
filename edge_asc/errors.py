"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""

from __future__ import annotations


class EdgeAscError(Exception):
    """A problem with the user's input or environment, not a bug: no traceback is shown."""

    exit_code = 2
