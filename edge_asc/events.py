"""Detection events: spans of windows in which one class holds the smoothed label.

A per-window log says "dog_bark 0.91" twice a second; a person, a database or Home Assistant
wants "a dog barked from 12:00:03 to 12:00:09". `EventDetector` turns the smoothed predictions
into such events. Pure: predictions in, events out, no clock, no I/O, so the same stream of
predictions always gives the same events.

Rules:
- a window is *active* for class C when its smoothed label is C and its smoothed confidence is
  at least C's threshold (per class, else the default), and C is allowed (the include list, if
  any, names it; the exclude list does not); `silence` and `uncertain` are never active;
- an event starts at the first active window and takes in every later window active for its
  class; it ends when another class becomes active, when no window has been active for it for
  more than `gap_s` stream seconds, or when the stream ends (`flush`);
- an event shorter than `min_duration_s` (from its first window's start to its last window's
  end, in stream seconds) is dropped: the window across a join of two sounds is often labelled
  something else for a moment.

Times: `start`/`end` are the wall-clock (UTC) times of the first and last active windows;
`duration_s` is measured in stream seconds, which equal real seconds from a microphone and stay
true when a file is replayed faster than real time.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from edge_asc.modelcard import SILENCE, UNCERTAIN

if TYPE_CHECKING:
    from edge_asc.prediction import Prediction

NEVER_EVENTS = frozenset({SILENCE, UNCERTAIN})
DEFAULT_EVENT_THRESHOLD = 0.5
DEFAULT_GAP_S = 1.0
DEFAULT_MIN_DURATION_S = 1.5  # two windows at the default hop: one odd window is no event


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the prediction log writes its times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class EventConfig:
    """What makes an event. ValueError on a threshold outside [0, 1], negative seconds, or a
    class named both included and excluded."""

    threshold: float = DEFAULT_EVENT_THRESHOLD  # for classes without their own
    thresholds: Mapping[str, float] = field(default_factory=dict)  # class -> threshold
    include: frozenset[str] | None = None  # None: every class
    exclude: frozenset[str] = frozenset()
    gap_s: float = DEFAULT_GAP_S
    min_duration_s: float = DEFAULT_MIN_DURATION_S

    def __post_init__(self) -> None:
        for name, value in (("event threshold", self.threshold), *self.thresholds.items()):
            if not _number(value) or not 0 <= value <= 1:
                raise ValueError(f"the threshold of {name} must be in [0, 1], not {value!r}")
        for name, value in (("gap", self.gap_s), ("minimum duration", self.min_duration_s)):
            if not _number(value) or not 0 <= value <= 86_400:
                raise ValueError(f"the event {name} must be 0 to 86,400 s, not {value!r}")
        both = (self.include or frozenset()) & self.exclude
        if both:
            raise ValueError(f"classes both included and excluded: {', '.join(sorted(both))}")
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))

    def check_labels(self, labels: Iterable[str]) -> None:
        """ValueError naming any class of the thresholds or lists that the model lacks (a typo
        would otherwise silently never match)."""
        known = set(labels)
        named = set(self.thresholds) | set(self.include or ()) | set(self.exclude)
        unknown = sorted(named - known)
        if unknown:
            raise ValueError(
                f"not a class of the model: {', '.join(unknown)} (its classes: "
                f"{', '.join(sorted(known))})"
            )

    def allows(self, label: str) -> bool:
        if label in NEVER_EVENTS or label in self.exclude:
            return False
        return self.include is None or label in self.include

    def threshold_of(self, label: str) -> float:
        return self.thresholds.get(label, self.threshold)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Event:
    """One detection, as stored, printed and published."""

    id: str
    label: str
    start: datetime  # UTC: the first window's time
    end: datetime  # UTC: the last window's time
    duration_s: float  # stream seconds from the first window's start to the last one's end
    peak_confidence: float  # highest smoothed confidence of its windows
    mean_confidence: float
    windows: int  # active windows in it (windows bridged by the gap are not counted)
    peak_dbfs: float
    model_id: str
    start_offset_s: float = 0.0  # stream seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; times as ISO 8601 UTC."""
        return {
            "id": self.id,
            "label": self.label,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "duration_s": round(self.duration_s, 3),
            "peak_confidence": round(self.peak_confidence, 6),
            "mean_confidence": round(self.mean_confidence, 6),
            "windows": self.windows,
            "peak_dbfs": round(self.peak_dbfs, 2),
            "model": self.model_id,
            "start_offset_s": round(self.start_offset_s, 3),
        }


@dataclass
class _Open:
    """An event still running: what it has seen so far."""

    label: str
    first: Prediction
    last: Prediction
    windows: int
    peak: float
    total: float
    peak_dbfs: float

    def add(self, pred: Prediction) -> None:
        self.last = pred
        self.windows += 1
        self.peak = max(self.peak, pred.smoothed_confidence)
        self.total += pred.smoothed_confidence
        self.peak_dbfs = max(self.peak_dbfs, pred.dbfs)

    def duration(self) -> float:
        return self.last.offset + self.last.window_seconds - self.first.offset


class EventDetector:
    """Feed it every prediction in order (`push`), and `flush` at the end of the stream; each
    returns the events that ended, in order. `current` is the event in progress, if any."""

    def __init__(
        self, config: EventConfig | None = None, new_id: Callable[[], str] | None = None
    ) -> None:
        self.config = config or EventConfig()
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        self._open: _Open | None = None
        self._open_id = ""

    def active_label(self, pred: Prediction) -> str | None:
        """The class this window is active for, or None."""
        label = pred.smoothed_label
        if not self.config.allows(label):
            return None
        return label if pred.smoothed_confidence >= self.config.threshold_of(label) else None

    def push(self, pred: Prediction) -> list[Event]:
        ended: list[Event] = []
        label = self.active_label(pred)
        current = self._open
        if current is not None and (
            (label is not None and label != current.label)
            or (label is None and pred.offset - current.last.offset > self.config.gap_s)
        ):
            ended += self._close()
            current = None
        if label is None:
            return ended
        if current is None:
            self._open = _Open(label, pred, pred, 0, 0.0, 0.0, -math.inf)
            self._open_id = self._new_id()
        assert self._open is not None
        self._open.add(pred)
        return ended

    def flush(self) -> list[Event]:
        """The stream ended (or is stopped): end the event in progress."""
        return self._close()

    @property
    def current(self) -> Event | None:
        """The event in progress as it stands now (None: none; it may still be under the minimum
        duration)."""
        if self._open is None:
            return None
        return self._event(self._open)

    def _event(self, open_: _Open) -> Event:
        return Event(
            id=self._open_id,
            label=open_.label,
            start=open_.first.time,
            end=open_.last.time,
            duration_s=open_.duration(),
            peak_confidence=open_.peak,
            mean_confidence=open_.total / open_.windows,
            windows=open_.windows,
            peak_dbfs=open_.peak_dbfs,
            model_id=open_.first.model_id,
            start_offset_s=open_.first.offset,
        )

    def _close(self) -> list[Event]:
        open_, self._open = self._open, None
        if open_ is None or open_.duration() < self.config.min_duration_s - 1e-9:
            return []
        return [self._event(open_)]


def detect(predictions: Iterable[Prediction], config: EventConfig | None = None) -> list[Event]:
    """Every event of a finished stream of predictions."""
    detector = EventDetector(config)
    events: list[Event] = []
    for pred in predictions:
        events += detector.push(pred)
    return events + detector.flush()


@dataclass
class NotifyPolicy:
    """Which events are told to people (an MQTT start message, the --on-event command): a per-class
    cooldown and a minimum confidence, so a dog barking all afternoon is not 4,000 notifications.
    Pure, in stream seconds; each teller keeps its own, fed the same events, so all agree."""

    cooldown_s: float = 30.0  # after a told start, that class's next start waits this long
    min_confidence: float = 0.0  # an event whose peak (so far) is lower is not told
    _last_start: dict[str, float] = field(default_factory=dict)  # class -> its last told start

    def worth_telling(self, event: Event) -> bool:
        if event.peak_confidence < self.min_confidence:
            return False
        last = self._last_start.get(event.label)
        return last is None or event.start_offset_s - last >= self.cooldown_s

    def told(self, event: Event) -> None:
        self._last_start[event.label] = event.start_offset_s
