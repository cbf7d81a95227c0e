"""The prediction log: one record per window, JSON Lines (default) or CSV, on disk.

Built to run for months on a Pi:
- each record goes to the file in one `write` on an O_APPEND descriptor, so a reader, SIGTERM
  or even kill -9 sees whole lines; only a line being written at the very moment of a kill can
  be cut, and the next start drops such a torn tail instead of gluing the next record to it;
- rotated by size with a cap on the number of old files, so at most (keep + 1) * max_bytes,
  plus one line, ever lie on disk;
- a write that fails while running (a full disk, a file size limit, an I/O error) does not stop
  the listener: the records are held in memory (up to `hold_bytes`, the oldest dropped first),
  the failure is reported once, and they are written, in order, as soon as a write succeeds;
- it never cuts, appends to or rotates away a file it did not write: an existing file must be
  empty or begin with one of its records (JSON Lines) or its header (CSV), whole or cut short
  by a kill, and be a regular file (not a FIFO, a device or /proc/version); the same holds for
  the rotated files (path.1 ...) a rotation would replace. Anything else is refused at the
  start (EdgeAscError), the file left byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from edge_asc.errors import EdgeAscError, warn
from edge_asc.prediction import Prediction

LOG_FORMATS = ("jsonl", "csv")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5
DEFAULT_HOLD_BYTES = 1024 * 1024  # ~2,500 records: 20 minutes of a full disk at a 0.5-s hop
TORN_TAIL_LIMIT = 64 * 1024  # a cut record is shorter than this; a longer tail is not ours
HEAD_BYTES = 64 * 1024  # read from an existing file's start to tell whether it is a log of ours
# In every record any version has written; a first line with all of them is one of ours.
RECORD_KEYS = frozenset({"time", "offset_s", "label", "confidence", "model"})
RECORD_START = b'{"time":"'  # how json.dumps(record(...)) begins: a cut first record still does
FORMAT_NAMES = MappingProxyType({"jsonl": "JSON Lines", "csv": "CSV"})
SUFFIX_FORMATS = MappingProxyType(
    {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
)


class ForeignFileError(EdgeAscError):
    """The log path holds something this app did not write: it is left alone."""


def utc_iso(pred: Prediction) -> str:
    """ISO 8601 UTC with milliseconds and a Z, e.g. 2025-01-31T12:00:00.250Z."""
    return pred.time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{pred.time.microsecond // 1000:03d}Z"


def record(pred: Prediction, top_k: int) -> dict[str, Any]:
    """The log's fields for one window (probabilities rounded to 6 decimals)."""
    return {
        "time": utc_iso(pred),
        "offset_s": round(pred.offset, 3),
        "label": pred.label,
        "confidence": round(pred.confidence, 6),
        "top_k": {label: round(p, 6) for label, p in pred.top_k(top_k)},
        "smoothed_label": pred.smoothed_label,
        "smoothed_confidence": round(pred.smoothed_confidence, 6),
        "dbfs": round(pred.dbfs, 2),
        "overflows": pred.overflows,
        "nonfinite": pred.nonfinite,
        "reconnects": pred.reconnects,
        "warnings": list(pred.warnings),
        "model": pred.model_id,
    }


def csv_header(top_k: int) -> list[str]:
    head = ["time", "offset_s", "label", "confidence", "smoothed_label", "smoothed_confidence"]
    head += ["dbfs", "overflows", "nonfinite", "reconnects", "warnings", "model"]
    for i in range(1, top_k + 1):
        head += [f"top{i}_label", f"top{i}_p"]
    return head


def csv_row(rec: dict[str, Any]) -> list[Any]:
    row = [";".join(v) if k == "warnings" else v for k, v in ((k, rec[k]) for k in csv_header(0))]
    for label, p in rec["top_k"].items():
        row += [label, p]
    return row


def csv_line(row: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def log_kind(head: bytes, size: int) -> str | None:
    """What a file beginning with `head` (of `size` bytes) is: "empty", "jsonl" or "csv" when
    this app wrote it (its first line one of our records or our header, whole or cut short by a
    kill in the first write), None when it did not."""
    if size == 0:
        return "empty" if not head else None  # /proc/version: size 0, yet it has content
    end = head.find(b"\n")
    if end < 0:  # one line, no end: a first write cut short, or not ours
        if len(head) < size:
            return None  # longer than any record
        if head.startswith(RECORD_START):
            return "jsonl"
        header = csv_line(csv_header(0)).encode()
        return "csv" if len(head) > len(b"time,") and header.startswith(head) else None
    first = head[:end]
    try:
        rec = json.loads(first)
    except ValueError:  # UnicodeDecodeError included
        rec = None
    if isinstance(rec, dict) and rec.keys() >= RECORD_KEYS:
        return "jsonl"
    try:
        row = next(csv.reader([first.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):  # csv.Error: a bare carriage return, say
        return None
    fixed = csv_header(0)
    return "csv" if row[: len(fixed)] == fixed else None


def inspect_existing(path: Path) -> str | None:
    """log_kind of the file at `path` (None: not a regular file); "missing" when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return "missing"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        return log_kind(os.pread(fd, HEAD_BYTES, 0), info.st_size)
    finally:
        os.close(fd)


def rotate(path: Path, keep: int) -> None:
    """path -> path.1 -> path.2 ... -> path.<keep>; the oldest beyond `keep` is deleted."""
    oldest = path.with_name(f"{path.name}.{keep}") if keep else path
    if oldest.exists():
        oldest.unlink()
    for i in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{i + 1}"))
    if keep and path.exists():
        path.replace(path.with_name(f"{path.name}.1"))


def torn_tail(fd: int, size: int) -> int:
    """Bytes after the last newline of a regular file (0 when it ends in one, -1: too many)."""
    if size == 0:
        return 0
    start = max(0, size - TORN_TAIL_LIMIT)
    tail = os.pread(fd, size - start, start)
    if tail.endswith(b"\n"):
        return 0
    cut = tail.rfind(b"\n")
    if cut < 0 and start > 0:
        return -1
    return len(tail) - (cut + 1)


def append(fd: int, data: bytes, size: int) -> None:
    """Write all of `data` at the end, or nothing: a part written before an error is truncated
    away (truncating needs no free space), so a full disk never leaves half a record."""
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, data[done:])
    except OSError:
        if done:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
        raise


class PredictionLog:
    """Append predictions to `path`, one line per write, rotating at `max_bytes`.

    A path that cannot be opened at the start is a user error (EdgeAscError). Once running,
    nothing the disk does stops the listener: see the module's docstring.
    """

    def __init__(
        self,
        path: str | Path,
        log_format: str = "jsonl",
        top_k: int = 3,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        notify: Callable[[str], None] = warn,
        hold_bytes: int = DEFAULT_HOLD_BYTES,
    ) -> None:
        if log_format not in LOG_FORMATS:
            raise EdgeAscError(f"unknown log format {log_format!r}; choose jsonl or csv")
        if max_bytes <= 0 or keep < 0:
            raise EdgeAscError("the log's size limit must be positive and its keep count >= 0")
        self.path = Path(path)
        self.format, self.top_k = log_format, top_k
        self.max_bytes, self.keep = max_bytes, keep
        self.notify = notify
        self.hold_bytes = hold_bytes
        self._fd: int | None = None
        self._size = 0
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        self._failure: str | None = None  # why writing fails, while it does
        self._dropped = 0  # records lost to the hold limit during the current failure
        self._closed = False
        try:  # a folder the user may not search: PermissionError from stat, one line
            is_dir = self.path.is_dir()
        except OSError as err:
            raise EdgeAscError(f"cannot open the log {self.path}: {err.strerror}") from err
        if is_dir:
            raise EdgeAscError(f"the log path is a directory: {self.path}")
        named = SUFFIX_FORMATS.get(self.path.suffix.lower())
        if named not in (None, log_format):
            raise EdgeAscError(
                f"the log {self.path} is named as {FORMAT_NAMES[named]}, but the log format is "
                f"{log_format}: name it .{log_format}, or choose --log-format {named}"
            )
        try:
            self._check_rotated()
            self._open(starting=True)
        except OSError as err:
            raise EdgeAscError(f"cannot open the log {self.path}: {err.strerror}") from err

    @property
    def held(self) -> int:
        """Records waiting in memory for the disk (0 unless writing fails)."""
        return len(self._held)

    def _check_rotated(self) -> None:
        """A rotation replaces path.1 ... path.<keep>: each must be a log of ours, or absent."""
        for i in range(1, self.keep + 1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if inspect_existing(older) is None:
                raise ForeignFileError(
                    f"rotating the log {self.path} would replace {older}, which edge-asc did not "
                    "write: move it, or choose another log path"
                )

    def _owned(self, fd: int) -> tuple[int, bytes]:
        """(size, first bytes) of the file open at `fd`, once it is known to be a log of ours
        in this format; ForeignFileError otherwise, before a byte of it is changed."""
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ForeignFileError(f"the log {self.path} is not a regular file")
        head = os.pread(fd, HEAD_BYTES, 0)
        kind = log_kind(head, info.st_size)
        if kind is None:
            what = "is not a regular file" if info.st_size == 0 else "was not written by edge-asc"
            raise ForeignFileError(
                f"the log {self.path} {what}: it is left as it is; choose another log path"
            )
        if kind not in ("empty", self.format):
            raise ForeignFileError(
                f"the log {self.path} holds {FORMAT_NAMES[kind]}; --log-format {self.format} "
                f"would not append to it: choose --log-format {kind}, or another log path"
            )
        return info.st_size, head

    def _replace_at_start(self, size: int, head: bytes) -> bool:
        """Rotate first when the file is full, or (CSV) when its columns differ from ours."""
        if size >= self.max_bytes:
            return True
        if self.format == "csv" and size:
            first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
            return next(csv.reader([first]), []) != csv_header(self.top_k)
        return False

    def _open(self, starting: bool = False) -> None:
        """Open a log of ours for appending (ForeignFileError for anything else); drop a record an
        earlier run was killed in the middle of. O_NONBLOCK: a FIFO must not block the open."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(self.path, flags, 0o666)
        try:
            size, head = self._owned(fd)
            if starting and self._replace_at_start(size, head):
                os.close(fd)
                fd = -1
                rotate(self.path, self.keep)
                self._open()
                return
            if size:
                torn = torn_tail(fd, size)
                if torn > 0:
                    os.ftruncate(fd, size - torn)
                    size -= torn
                    self.notify(
                        f"dropped an incomplete last line ({torn} bytes) of {self.path}: "
                        "an earlier run was stopped in the middle of writing it"
                    )
                elif torn < 0:  # a last line longer than any record: never glue one to it
                    os.write(fd, b"\n")
                    size += 1
            if self.format == "csv" and size == 0:
                header = csv_line(csv_header(self.top_k)).encode("utf-8")
                append(fd, header, 0)
                size = len(header)
        except (OSError, ForeignFileError):
            if fd >= 0:
                os.close(fd)
            raise
        self._fd, self._size = fd, size

    def line(self, pred: Prediction) -> bytes:
        rec = record(pred, self.top_k)
        if self.format == "jsonl":
            return (json.dumps(rec, separators=(",", ":")) + "\n").encode("utf-8")
        return csv_line(csv_row(rec)).encode("utf-8")

    def write(self, pred: Prediction) -> None:
        """Log one window; never raises for the disk's sake once the log is open."""
        if self._closed:
            raise ValueError("the log is closed")
        data = self.line(pred)
        self._held.append(data)
        self._held_bytes += len(data)
        self._drain()

    def _drain(self) -> None:
        written = 0
        while self._held:
            try:
                if self._fd is None:
                    self._open()
                assert self._fd is not None
                append(self._fd, self._held[0], self._size)
            except (OSError, ForeignFileError) as err:  # a foreign file put there while running
                self._fail(err)
                return
            data = self._held.popleft()
            self._held_bytes -= len(data)
            self._size += len(data)
            written += 1
            if self._size >= self.max_bytes:
                self._rotate()
        if self._failure is not None:
            dropped = f", {self._dropped} dropped" if self._dropped else ""
            self.notify(
                f"the log {self.path} is writable again: {written} held records written{dropped}"
            )
            self._failure, self._dropped = None, 0

    def _fail(self, err: OSError | ForeignFileError) -> None:
        """Say once why the log cannot be written; keep the newest records up to the limit."""
        if self._failure is None:
            self._failure = (err.strerror if isinstance(err, OSError) else None) or str(err)
            self.notify(
                f"cannot write the log {self.path} ({self._failure}); the listener goes on, "
                f"holding up to {self.hold_bytes // 1024} KiB of records in memory and "
                "retrying with each new one"
            )
        while self._held_bytes > self.hold_bytes and len(self._held) > 1:
            self._held_bytes -= len(self._held.popleft())
            self._dropped += 1

    def _rotate(self) -> None:
        self._close_fd()
        try:
            rotate(self.path, self.keep)
        except OSError as err:
            self.notify(f"cannot rotate the log {self.path} ({err.strerror}); appending to it")
        # Opened again by the next write: a failure to do so is held and reported like any other.

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def reopen(self) -> None:
        """Close and open the path again: after logrotate renamed the file, go on in a new one."""
        self._close_fd()
        try:
            self._open()
        except (OSError, ForeignFileError) as err:
            self._fail(err)  # said once; the next write tries again
            return
        self._drain()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._held:
            self._drain()
        if self._held:
            self.notify(f"{len(self._held)} records could not be written to {self.path}")
        self._close_fd()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
