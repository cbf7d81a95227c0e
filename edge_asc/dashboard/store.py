"""The events the pages show: read from the SQLite history, or the listener's memory without one.

The history is opened read-only for each request (WAL lets it be read while the listener
writes), newest first and with a limit, so a page never loads months of events.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from edge_asc.dashboard.feed import LiveFeed
from edge_asc.errors import EdgeAscError
from edge_asc.events import Event
from edge_asc.history import EVENT_COLUMNS, connect, row_event


class EventStore(Protocol):
    def recent(
        self, since: datetime | None, label: str | None, limit: int, until: datetime | None = None
    ) -> list[Event]:
        """Events that started in [since, until) (of `label`), newest first, at most `limit`."""
        ...


@dataclass(frozen=True)
class HistoryStore:
    path: Path

    def check(self) -> None:
        """EdgeAscError in one line when the file is missing or not a history (`serve`)."""
        connect(self.path, read_only=True).close()

    def recent(
        self, since: datetime | None, label: str | None, limit: int, until: datetime | None = None
    ) -> list[Event]:
        query = f"SELECT {EVENT_COLUMNS} FROM events WHERE start_ts >= ? AND start_ts < ?"
        params: list[object] = [
            since.timestamp() if since else -math.inf,
            until.timestamp() if until else math.inf,
        ]
        if label is not None:
            query += " AND label = ?"
            params.append(label)
        params.append(limit)
        try:
            conn = connect(self.path, read_only=True)
        except EdgeAscError:
            if not self.path.exists():  # `listen --db` creates it with its first start
                return []
            raise
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                return []
            rows = conn.execute(query + " ORDER BY start_ts DESC, rowid DESC LIMIT ?", params)
            return [row_event(row) for row in rows.fetchall()]
        except sqlite3.Error as err:
            raise EdgeAscError(f"cannot read the history {self.path}: {err}") from err
        finally:
            conn.close()


@dataclass(frozen=True)
class MemoryStore:
    """Without --db: the events this listener has seen since it started."""

    feed: LiveFeed

    def recent(
        self, since: datetime | None, label: str | None, limit: int, until: datetime | None = None
    ) -> list[Event]:
        found = [
            e
            for e in reversed(self.feed.events())
            if (since is None or e.start >= since)
            and (until is None or e.start < until)
            and (label is None or e.label == label)
        ]
        return found[:limit]
