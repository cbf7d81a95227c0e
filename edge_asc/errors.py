"""User-facing errors, and the one-line notices a running listener leaves in the journal.

The CLI turns an EdgeAscError into one line on stderr and exit code 2. A fault the listener
survives (a lost device, a full disk, silent input) is not an error: it is reported with
`warn`, one line on stderr (the journal under systemd), and the listener goes on.
"""

from __future__ import annotations

import sys


class EdgeAscError(Exception):
    """A problem with the user's input or environment, not a bug: no traceback is shown."""

    exit_code = 2


def warn(message: str) -> None:
    """One line on stderr, flushed at once: journald timestamps it when it arrives."""
    print(f"edge-asc: {message}", file=sys.stderr, flush=True)
