"""The event history: every detection event in an SQLite file, stored as it ends.

Made to run for months on a Pi's SD card, with the prediction log's promises:
- WAL journal with synchronous=NORMAL: each event is one committed transaction, so kill -9
  at any moment loses at most the event being written and never corrupts the file (only a power
  cut can lose the last commits; WAL never leaves the file inconsistent either way); a busy
  timeout lets `edge-asc events` read while the listener writes;
- a write that fails while running (a full disk, a file size limit, an I/O error) does not
  stop the listener: the rows are held in memory (up to `hold_rows`, the oldest dropped first),
  the failure is said once, and they are written in order as soon as a write succeeds; a failed
  insert is rolled back by SQLite, so nothing already stored is lost;
- the schema's version is in the file (PRAGMA user_version) and an older file is migrated
  forward when opened; a newer one, a file that is not SQLite, or an SQLite file of another
  application (PRAGMA application_id) is refused in one line and left as it is;
- retention by age: events (and windows) that ended more than `keep_days` ago are deleted when
  the file is opened and at most once an hour after.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from edge_asc.errors import EdgeAscError, warn
from edge_asc.events import Event, EventDetector, iso_utc

if TYPE_CHECKING:
    from edge_asc.prediction import Prediction

APPLICATION_ID = 0x45415343  # "EASC": marks the file as edge-asc's
BUSY_TIMEOUT_MS = 5000
DEFAULT_HOLD_ROWS = 10_000  # events (and thinned windows) kept in memory while the disk fails
PRUNE_INTERVAL_S = 3600.0
# MIGRATIONS[n - 1] takes a file from schema version n - 1 to n; a new file runs them all.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            id TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            start_utc TEXT NOT NULL,
            end_utc TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            duration_s REAL NOT NULL,
            peak_confidence REAL NOT NULL,
            mean_confidence REAL NOT NULL,
            windows INTEGER NOT NULL,
            peak_dbfs REAL NOT NULL,
            model TEXT NOT NULL,
            start_offset_s REAL NOT NULL
        )""",
        "CREATE INDEX events_by_start ON events (start_ts)",
    ),
    (
        """CREATE TABLE windows (
            time_utc TEXT NOT NULL,
            time_ts REAL NOT NULL,
            offset_s REAL NOT NULL,
            label TEXT NOT NULL,
            confidence REAL NOT NULL,
            smoothed_label TEXT NOT NULL,
            smoothed_confidence REAL NOT NULL,
            dbfs REAL NOT NULL,
            model TEXT NOT NULL
        )""",
        "CREATE INDEX windows_by_time ON windows (time_ts)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
EVENT_COLUMNS = (
    "id, label, start_utc, end_utc, start_ts, end_ts, duration_s, peak_confidence, "
    "mean_confidence, windows, peak_dbfs, model, start_offset_s"
)
INSERT_EVENT = f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 13)})"
INSERT_WINDOW = (
    "INSERT INTO windows (time_utc, time_ts, offset_s, label, confidence, smoothed_label, "
    "smoothed_confidence, dbfs, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def event_row(event: Event) -> tuple[Any, ...]:
    return (
        event.id,
        event.label,
        iso_utc(event.start),
        iso_utc(event.end),
        event.start.timestamp(),
        event.end.timestamp(),
        event.duration_s,
        event.peak_confidence,
        event.mean_confidence,
        event.windows,
        event.peak_dbfs,
        event.model_id,
        event.start_offset_s,
    )


def row_event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    def utc(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, timezone.utc)

    return Event(
        id=row[0],
        label=row[1],
        start=utc(row[4]),
        end=utc(row[5]),
        duration_s=row[6],
        peak_confidence=row[7],
        mean_confidence=row[8],
        windows=row[9],
        peak_dbfs=row[10],
        model_id=row[11],
        start_offset_s=row[12],
    )


def window_row(pred: Prediction) -> tuple[Any, ...]:
    return (
        iso_utc(pred.time),
        pred.time.timestamp(),
        pred.offset,
        pred.label,
        pred.confidence,
        pred.smoothed_label,
        pred.smoothed_confidence,
        pred.dbfs,
        pred.model_id,
    )


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """An autocommit connection (each statement its own transaction) with the busy timeout;
    EdgeAscError in one line when the path cannot be opened as a database."""
    if path.is_dir():
        raise EdgeAscError(f"the history path is a directory: {path}")
    if read_only and not path.exists():
        raise EdgeAscError(f"no history at {path} (made by `edge-asc listen --db {path}`)")
    target = f"file:{path.resolve()}?mode=ro" if read_only else str(path)
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, uri=read_only
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    except (sqlite3.Error, OSError) as err:
        raise EdgeAscError(f"cannot open the history {path}: {_why(err)}") from err
    return _checked(conn, path, app_id)


def _why(err: BaseException) -> str:
    text = str(err)
    if "file is not a database" in text:
        return "it is not an SQLite database (left as it is; choose another path)"
    return getattr(err, "strerror", None) or text


def _checked(conn: sqlite3.Connection, path: Path, app_id: int) -> sqlite3.Connection:
    """The connection, once the file is empty or edge-asc's and not of a newer schema."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as err:
        conn.close()
        raise EdgeAscError(f"cannot read the history {path}: {_why(err)}") from err
    problem = None
    if app_id != APPLICATION_ID and (app_id or tables):
        problem = "is an SQLite database of another application (left as it is)"
    elif version > SCHEMA_VERSION:
        problem = (
            f"was written by a newer edge-asc (schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade edge-asc"
        )
    if problem:
        conn.close()
        raise EdgeAscError(f"the history {path} {problem}")
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file's schema up to SCHEMA_VERSION, one version per transaction."""
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
    except sqlite3.Error as err:
        conn.close()
        raise EdgeAscError(f"cannot set up the history {path}: {_why(err)}") from err


class History:
    """The listener's side: store events (and thinned windows) as they come, prune by age.

    Opening is checked (EdgeAscError in one line); once open, nothing the disk does raises: see
    the module's docstring.
    """

    def __init__(
        self,
        path: str | Path,
        keep_days: float | None = None,
        notify: Callable[[str], None] = warn,
        hold_rows: int = DEFAULT_HOLD_ROWS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keep_days is not None and (not math.isfinite(keep_days) or keep_days <= 0):
            raise EdgeAscError("the history's retention must be a positive number of days")
        self.path = Path(path)
        self.keep_days, self.notify = keep_days, notify
        self.hold_rows, self.clock = hold_rows, clock
        self._conn = connect(self.path)
        migrate(self._conn, self.path)
        self._held: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._failure: str | None = None
        self._dropped = 0
        self._pruned_at = -math.inf
        self._closed = False
        self.prune()

    @property
    def held(self) -> int:
        """Rows waiting in memory for the disk (0 unless writing fails)."""
        return len(self._held)

    def add_event(self, event: Event) -> None:
        """Store one ended event; never raises for the disk's sake."""
        self._add(INSERT_EVENT, event_row(event))

    def add_window(self, pred: Prediction) -> None:
        self._add(INSERT_WINDOW, window_row(pred))

    def _add(self, sql: str, row: tuple[Any, ...]) -> None:
        if self._closed:
            raise ValueError("the history is closed")
        self._held.append((sql, row))
        self._drain()
        if self.clock() - self._pruned_at >= PRUNE_INTERVAL_S:
            self.prune()

    def _drain(self) -> None:
        written = 0
        while self._held:
            sql, row = self._held[0]
            try:
                self._conn.execute(sql, row)  # autocommit: one transaction, or rolled back
            except sqlite3.Error as err:
                self._fail(err)
                return
            self._held.popleft()
            written += 1
        if self._failure is not None:
            dropped = f", {self._dropped} dropped" if self._dropped else ""
            self.notify(
                f"the history {self.path} is writable again: {written} held rows written{dropped}"
            )
            self._failure, self._dropped = None, 0

    def _fail(self, err: sqlite3.Error) -> None:
        """Say once why the history cannot be written; keep the newest rows up to the limit."""
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        if self._failure is None:
            self._failure = str(err)
            self.notify(
                f"cannot write the history {self.path} ({self._failure}); the listener goes on, "
                f"holding up to {self.hold_rows:,} rows in memory and retrying with each new one"
            )
        while len(self._held) > self.hold_rows:
            self._held.popleft()
            self._dropped += 1

    def prune(self, now: float | None = None) -> int:
        """Delete what ended more than keep_days before `now` (default: the clock); the number of
        events deleted. A failure is left for the next time (retention is not urgent)."""
        now = self.clock() if now is None else now
        self._pruned_at = now
        if self.keep_days is None:
            return 0
        cutoff = now - self.keep_days * 86_400
        try:
            deleted = self._conn.execute("DELETE FROM events WHERE end_ts < ?", (cutoff,))
            self._conn.execute("DELETE FROM windows WHERE time_ts < ?", (cutoff,))
        except sqlite3.Error:
            return 0
        return deleted.rowcount

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._held:
            self._drain()
        if self._held:
            self.notify(f"{len(self._held)} rows could not be written to {self.path}")
        self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_events(
    path: str | Path, since: datetime | None = None, label: str | None = None
) -> list[Event]:
    """The stored events, oldest first: those that started at or after `since`, of `label`."""
    path = Path(path)
    conn = connect(path, read_only=True)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            return []  # created, never set up: no events
        query = f"SELECT {EVENT_COLUMNS} FROM events WHERE start_ts >= ?"
        params: list[Any] = [since.timestamp() if since else -math.inf]
        if label is not None:
            query += " AND label = ?"
            params.append(label)
        rows = conn.execute(query + " ORDER BY start_ts, rowid", params).fetchall()
    except sqlite3.Error as err:
        raise EdgeAscError(f"cannot read the history {path}: {_why(err)}") from err
    finally:
        conn.close()
    return [row_event(row) for row in rows]


class EventWatcher(Protocol):
    """Told of every window and event (MQTT): `window(None, ...)` when the stream ends."""

    def window(
        self, pred: Prediction | None, ended: list[Event], current: Event | None
    ) -> None: ...
    def close(self) -> None: ...


@dataclass
class EventSink:
    """The listen loop's hook, next to the prediction log: each prediction goes to the detector,
    each event that ends into the history (if any); every `window_every_s` stream seconds (0:
    never) a window goes in too; `watchers` see each window with the events it ended and the
    one in progress. `close` ends the event in progress (a clean stop stores it)."""

    history: History | None
    detector: EventDetector
    window_every_s: float = 0.0
    watchers: list[EventWatcher] = field(default_factory=list)
    _next_window: float = 0.0

    def write(self, pred: Prediction) -> None:
        ended = self.detector.push(pred)
        if self.history is not None:
            for event in ended:
                self.history.add_event(event)
            if self.window_every_s > 0 and pred.offset >= self._next_window:
                self.history.add_window(pred)
                self._next_window = pred.offset + self.window_every_s
        for watcher in self.watchers:
            watcher.window(pred, ended, self.detector.current)

    def reopen(self) -> None:
        """SIGHUP: nothing to reopen (SQLite is not rotated)."""

    def close(self) -> None:
        try:
            ended = self.detector.flush()
            if self.history is not None:
                for event in ended:
                    self.history.add_event(event)
            for watcher in self.watchers:
                watcher.window(None, ended, None)
        finally:
            try:
                for watcher in self.watchers:
                    watcher.close()
            finally:
                if self.history is not None:
                    self.history.close()


@dataclass
class Sinks:
    """Several sinks fed as one, in order (the prediction log, then the event history): what
    the listen loop writes each prediction to, reopens on SIGHUP and closes at the end."""

    members: list[Any]

    def write(self, pred: Prediction) -> None:
        for sink in self.members:
            sink.write(pred)

    def reopen(self) -> None:
        for sink in self.members:
            sink.reopen()

    def close(self) -> None:
        """Close every member, even when one fails to."""
        errors = []
        for sink in self.members:
            try:
                sink.close()
            except Exception as err:  # the others must still be closed
                errors.append(err)
        if errors:
            raise errors[0]
