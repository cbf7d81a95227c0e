"""The today page's chart, drawn here as SVG: no charting script to ship, and a Pi draws a few
hundred rectangles in well under a millisecond."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from edge_asc.events import Event

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
WIDTH, LEFT, ROW, BARS = 960, 130, 22, 80


def colour(label: str, labels: list[str]) -> str:
    """The same colour for a class on every page (its place among the model's classes)."""
    index = labels.index(label) if label in labels else len(labels) + sum(map(ord, label))
    return PALETTE[index % len(PALETTE)]


def timeline_svg(events: list[Event], labels: list[str], since: datetime, until: datetime) -> str:
    """A row per class with a mark per event, then the events per hour as bars; times UTC."""
    span = (until - since).total_seconds() or 1.0
    plot = WIDTH - LEFT - 10
    shown = sorted(
        {e.label for e in events},
        key=lambda x: (x not in labels, labels.index(x) if x in labels else 0, x),
    )
    height = 30 + ROW * max(len(shown), 1) + BARS + 30

    def x(moment: datetime) -> float:
        seconds = min(max((moment - since).total_seconds(), 0.0), span)
        return LEFT + plot * seconds / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="events of the last 24 hours">',
        "<style>text{font:12px sans-serif;fill:#333}</style>",
    ]
    for row, label in enumerate(shown):
        y = 20 + row * ROW
        parts.append(f'<text x="{LEFT - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect x="{LEFT}" y="{y + 2}" width="{plot}" height="{ROW - 4}" fill="#f3f3f3"/>'
        )
        for event in (e for e in events if e.label == label):
            left = x(event.start)
            right = max(x(event.end + timedelta(seconds=1)), left + 2)
            parts.append(
                f'<rect class="event" x="{left:.1f}" y="{y + 2}" width="{right - left:.1f}" '
                f'height="{ROW - 4}" fill="{colour(label, labels)}"><title>{escape(label)} '
                f"{event.start:%H:%M:%S} UTC, {event.duration_s:.1f} s</title></rect>"
            )
    if not shown:
        parts.append(f'<text x="{LEFT}" y="35">no events in the last 24 hours</text>')
    top = 30 + ROW * max(len(shown), 1)
    hours = [
        since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=h) for h in range(25)
    ]
    per_hour = [sum(1 for e in events if h <= e.start < h + timedelta(hours=1)) for h in hours]
    peak = max(per_hour) or 1
    parts.append(f'<text x="{LEFT - 6}" y="{top + BARS / 2}" text-anchor="end">per hour</text>')
    for hour, count in zip(hours, per_hour, strict=True):
        if count and since <= hour + timedelta(hours=1) and hour <= until:
            left, right = x(hour), x(hour + timedelta(hours=1))
            bar = BARS * count / peak
            parts.append(
                f'<rect x="{left + 1:.1f}" y="{top + BARS - bar:.1f}" '
                f'width="{right - left - 2:.1f}" height="{bar:.1f}" fill="#555">'
                f"<title>{hour:%H}:00 UTC: {count}</title></rect>"
            )
    for hour in hours[::3]:
        if since <= hour <= until:
            parts.append(
                f'<text x="{x(hour):.1f}" y="{top + BARS + 18}" text-anchor="middle">'
                f"{hour:%H}:00</text>"
            )
    parts.append(f'<text x="{WIDTH - 10}" y="{height - 2}" text-anchor="end">UTC</text></svg>')
    return "".join(parts)
