"""User-facing errors, and the one-line notices a running listener leaves in the journal.

The CLI turns an EdgeAscError into one line on stderr and exit code 2. A fault the listener
survives (a lost device, a full disk, silent input) is not an error: it is reported with
`warn`, one line on stderr (the journal under systemd), and the listener goes on.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path


class EdgeAscError(Exception):
    """A problem with the user's input or environment, not a bug: no traceback is shown."""

    exit_code = 2


def warn(message: str) -> None:
    """One line on stderr, flushed at once: journald timestamps it when it arrives."""
    print(f"edge-asc: {message}", file=sys.stderr, flush=True)


def check_regular_file(path: Path, noun: str, missing: str, expected: str) -> None:
    """EdgeAscError unless `path` is a regular file: a directory, a FIFO (which would block the
    reader for ever) or a device is said as such, and so is a stat that fails for any reason
    (a folder of another user's raises PermissionError, a symlink loop ELOOP)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise EdgeAscError(f"{missing}: {path}") from None
    except OSError as err:
        raise EdgeAscError(f"cannot read {noun} {path}: {err.strerror}") from err
    if stat.S_ISDIR(mode):
        raise EdgeAscError(f"expected {expected}, got a directory: {path}")
    if not stat.S_ISREG(mode):
        raise EdgeAscError(f"expected {expected}, got a special file: {path}")
