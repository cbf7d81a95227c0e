"""The prediction log: one record per window, JSON Lines (default) or CSV, on disk.

Appended and flushed per line, so a reader (or a crash, or SIGTERM) never sees half a record,
and rotated by size with a cap on the number of old files, so a 24/7 Pi never fills its disk:
at most (keep + 1) * max_bytes, plus one line, ever lie on disk.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from edge_asc.errors import EdgeAscError
from edge_asc.stream import Prediction

LOG_FORMATS = ("jsonl", "csv")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5


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
        "model": pred.model_id,
    }


def csv_header(top_k: int) -> list[str]:
    head = ["time", "offset_s", "label", "confidence", "smoothed_label", "smoothed_confidence"]
    head += ["dbfs", "overflows", "model"]
    for i in range(1, top_k + 1):
        head += [f"top{i}_label", f"top{i}_p"]
    return head


def csv_row(rec: dict[str, Any]) -> list[Any]:
    row = [rec[k] for k in csv_header(0)]
    for label, p in rec["top_k"].items():
        row += [label, p]
    return row


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


class PredictionLog:
    """Append predictions to `path`, one flushed line each, rotating at `max_bytes`."""

    def __init__(
        self,
        path: str | Path,
        log_format: str = "jsonl",
        top_k: int = 3,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        if log_format not in LOG_FORMATS:
            raise EdgeAscError(f"unknown log format {log_format!r}; choose jsonl or csv")
        if max_bytes <= 0 or keep < 0:
            raise EdgeAscError("the log's size limit must be positive and its keep count >= 0")
        self.path = Path(path)
        self.format, self.top_k = log_format, top_k
        self.max_bytes, self.keep = max_bytes, keep
        self._fh: TextIO | None = None
        if self.path.is_dir():
            raise EdgeAscError(f"the log path is a directory: {self.path}")
        if self._needs_new_file():
            rotate(self.path, keep)
        self._open()

    def _needs_new_file(self) -> bool:
        """Rotate first when the file is full, or (CSV) when its columns differ from ours."""
        if not self.path.exists():
            return False
        if self.path.stat().st_size >= self.max_bytes:
            return True
        if self.format == "csv" and self.path.stat().st_size:
            with open(self.path, newline="") as fh:
                return next(csv.reader(fh), []) != csv_header(self.top_k)
        return False

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as err:
            raise EdgeAscError(f"cannot open the log {self.path}: {err.strerror}") from err
        self._size = self._fh.tell()
        if self.format == "csv" and self._size == 0:
            self._write_line(self._csv_line(csv_header(self.top_k)))

    def _csv_line(self, row: list[Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(row)
        return buf.getvalue()

    def _write_line(self, line: str) -> None:
        assert self._fh is not None
        try:
            self._fh.write(line)
            self._fh.flush()
        except OSError as err:
            raise EdgeAscError(f"cannot write the log {self.path}: {err.strerror}") from err
        self._size += len(line.encode("utf-8"))

    def write(self, pred: Prediction) -> None:
        if self._fh is None:
            raise ValueError("the log is closed")
        rec = record(pred, self.top_k)
        if self.format == "jsonl":
            line = json.dumps(rec, separators=(",", ":")) + "\n"
        else:
            line = self._csv_line(csv_row(rec))
        self._write_line(line)
        if self._size >= self.max_bytes:
            self._fh.close()
            rotate(self.path, self.keep)
            self._open()

    def reopen(self) -> None:
        """Close and open the path again: after logrotate renamed the file, go on in a new one."""
        self.close()
        self._open()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
