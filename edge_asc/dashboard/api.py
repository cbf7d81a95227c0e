"""The JSON API under /api/ that the pages use (documented in docs/dashboard.md).

Each function takes the dashboard and the query's parameters and returns the body; a bad
parameter is a ValueError whose text the server sends back with 400.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from edge_asc.dashboard.charts import timeline_svg
from edge_asc.dashboard.clips import ClipFolder
from edge_asc.dashboard.feed import LiveFeed, Moment
from edge_asc.dashboard.store import EventStore
from edge_asc.errors import EdgeAscError
from edge_asc.events import Event, iso_utc
from edge_asc.history_view import parse_since

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
TODAY_LIMIT = 20_000  # events drawn on the 24-h timeline at most


@dataclass(frozen=True)
class Dashboard:
    """Everything a request may read: nothing here is written by a request."""

    feed: LiveFeed
    store: EventStore
    labels: list[str]
    card_json: str  # the model card, as `edge-asc info --json` prints it
    model_id: str
    clips: ClipFolder | None = None


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def now(board: Dashboard) -> dict[str, Any]:
    """The latest window (null before the first one, and under `serve`)."""
    _, moment = board.feed.latest()
    return moment_dict(board, moment)


def moment_dict(board: Dashboard, moment: Moment | None) -> dict[str, Any]:
    return {
        "live": board.feed.live,
        "ended": board.feed.ended,
        "window": moment.to_dict(board.feed.top_k) if moment else None,
    }


def event_dict(board: Dashboard, event: Event) -> dict[str, Any]:
    data = event.to_dict()
    has_clip = board.clips is not None and board.clips.has(event.id)
    data["clip"] = f"/clips/{event.id}.flac" if has_clip else None
    return data


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values or not values[-1].strip():
        return None
    return values[-1].strip()


def _time(params: dict[str, list[str]], name: str) -> datetime | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        return parse_since(text)
    except EdgeAscError as err:
        raise ValueError(str(err).replace("--since", name)) from None


def events(board: Dashboard, params: dict[str, list[str]]) -> dict[str, Any]:
    """?label=CLASS&since=1h|ISO&until=ISO&limit=N: newest first."""
    label = _one(params, "label")
    if label is not None and label not in board.labels:
        raise ValueError(f"label must be one of the model's classes (got {label!r})")
    limit_text = _one(params, "limit") or str(DEFAULT_LIMIT)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ValueError(f"limit must be 1 to {MAX_LIMIT} (got {limit_text!r})")
    found = board.store.recent(
        _time(params, "since"), label, int(limit_text), _time(params, "until")
    )
    return {"events": [event_dict(board, e) for e in found]}


def day(board: Dashboard, until: datetime | None = None) -> tuple[datetime, datetime, list[Event]]:
    until = until or datetime.now(timezone.utc)
    since = until - timedelta(hours=24)
    return since, until, board.store.recent(since, None, TODAY_LIMIT)[::-1]


def today(board: Dashboard) -> dict[str, Any]:
    """The last 24 h: events per hour and class, and each class's total."""
    since, until, found = day(board)
    first = since.replace(minute=0, second=0, microsecond=0)
    hours = []
    for h in range(25):
        start = first + timedelta(hours=h)
        per = Counter(e.label for e in found if start <= e.start < start + timedelta(hours=1))
        if start + timedelta(hours=1) > since:
            hours.append({"hour": iso_utc(start), "counts": dict(sorted(per.items()))})
    totals = Counter(e.label for e in found)
    return {
        "since": iso_utc(since),
        "until": iso_utc(until),
        "hours": hours,
        "totals": dict(totals.most_common()),
        "spans": [
            {"label": e.label, "start": iso_utc(e.start), "end": iso_utc(e.end)} for e in found
        ],
    }


def today_svg(board: Dashboard) -> str:
    since, until, found = day(board)
    return timeline_svg(found, board.labels, since, until)


def model(board: Dashboard) -> dict[str, Any]:
    return {"id": board.model_id, "card": json.loads(board.card_json)}
