"""What the listener hands the dashboard: the latest window and the events as they end.

The listener's thread only stores a reference and wakes the waiting pages (a condition
variable): no JSON is built, nothing is queued per client, so a slow or stuck browser can never
hold up the audio, and with no page open the dashboard costs one attribute store per window.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge_asc.events import Event, iso_utc
from edge_asc.live import WARNING_TEXT

if TYPE_CHECKING:
    from edge_asc.prediction import Prediction

RECENT_EVENTS = 10_000  # events kept in memory when there is no --db (the events page's rows)


@dataclass
class Moment:
    """One window as the now page shows it, with the event in progress."""

    pred: Prediction
    current: Event | None

    def to_dict(self, top_k: int) -> dict[str, Any]:
        pred = self.pred
        return {
            "time": iso_utc(pred.time),
            "offset_s": round(pred.offset, 3),
            "label": pred.smoothed_label,
            "confidence": round(pred.smoothed_confidence, 4),
            "window_label": pred.label,
            "top_k": [[label, round(p, 4)] for label, p in pred.top_k(top_k, smoothed=True)],
            "dbfs": round(pred.dbfs, 1),
            "warnings": [WARNING_TEXT.get(w, w) for w in pred.warnings],
            "event": self.current.to_dict() if self.current else None,
            "model": pred.model_id,
        }


@dataclass
class LiveFeed:
    """The latest moment and the ended events, numbered so a waiting page knows what is new."""

    top_k: int = 3
    live: bool = True  # False: `serve`, no audio behind it
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _moment: Moment | None = None
    _moment_seq: int = 0
    _events: deque[tuple[int, Event]] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    _event_seq: int = 0
    _ended: bool = False

    def publish(self, moment: Moment | None, ended: list[Event]) -> None:
        """The listener's side (any thread): a new window (None: the stream ended)."""
        with self._cond:
            if moment is None:
                self._ended = True
            else:
                self._moment, self._moment_seq = moment, self._moment_seq + 1
            for event in ended:
                self._event_seq += 1
                self._events.append((self._event_seq, event))
            self._cond.notify_all()

    def latest(self) -> tuple[int, Moment | None]:
        with self._cond:
            return self._moment_seq, self._moment

    @property
    def ended(self) -> bool:
        return self._ended

    def events(self) -> list[Event]:
        """The ended events kept in memory, oldest first."""
        with self._cond:
            return [event for _, event in self._events]

    def event_seq(self) -> int:
        with self._cond:
            return self._event_seq

    def wait(
        self, moment_seq: int, event_seq: int, timeout: float
    ) -> tuple[int, Moment | None, int, list[Event]]:
        """Block until there is a newer moment or event than those numbers, or `timeout`; the
        newest moment and the events after `event_seq`."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._moment_seq > moment_seq or self._event_seq > event_seq or self._ended,
                timeout,
            )
            new = [event for seq, event in self._events if seq > event_seq]
            return self._moment_seq, self._moment, self._event_seq, new

    def wake(self) -> None:
        """Let every waiting page look again (the server is stopping)."""
        with self._cond:
            self._cond.notify_all()


@dataclass
class FeedWatcher:
    """The EventSink watcher that feeds the dashboard (edge_asc.history.EventWatcher); closing
    it stops the server (`on_close`), after the stream's last event is in the feed."""

    feed: LiveFeed
    on_close: Callable[[], None] = lambda: None

    def window(self, pred: Prediction | None, ended: list[Event], current: Event | None) -> None:
        self.feed.publish(Moment(pred, current) if pred is not None else None, ended)

    def close(self) -> None:
        self.on_close()
