"""What `edge-asc events` and `edge-asc summary` print: the history read back, as a person, a
script (JSON Lines, CSV) or a chart wants it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.bar import Bar
from rich.console import Console
from rich.table import Table

from edge_asc.errors import EdgeAscError
from edge_asc.events import Event, iso_utc

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
BUCKETS = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}
CSV_FIELDS = (
    "id",
    "label",
    "start",
    "end",
    "duration_s",
    "peak_confidence",
    "mean_confidence",
    "windows",
    "peak_dbfs",
    "model",
    "start_offset_s",
)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`1h`, `30m`, `2d`, `1w`, `90s` before now, or an ISO date or time (UTC unless it says
    otherwise): 2026-12-01, 2026-12-01T08:00, 2026-12-01T08:00:00+01:00."""
    now = now or datetime.now(timezone.utc)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EdgeAscError(
            f"--since must be a span such as 30m, 1h, 2d, 1w or a date such as 2026-12-01 "
            f"(got {text!r})"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def events_text(events: list[Event], fmt: str) -> str:
    """`json`: one object per line; `csv`: a header and a row per event; `text`: aligned lines."""
    if fmt == "json":
        return "".join(json.dumps(e.to_dict()) + "\n" for e in events)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(e.to_dict() for e in events)
        return buf.getvalue()
    lines = [
        f"{iso_utc(e.start)}  {iso_utc(e.end)}  {e.duration_s:6.1f} s  {e.label:<18} "
        f"peak {e.peak_confidence:.2f}  mean {e.mean_confidence:.2f}  {e.peak_dbfs:6.1f} dBFS"
        for e in events
    ]
    return "".join(line + "\n" for line in lines)


def counts(events: list[Event], by: str | None) -> dict[str, Counter[str]]:
    """bucket ("" without `by`) -> label -> events that started in it, buckets in time order."""
    table: dict[str, Counter[str]] = {}
    for event in events:
        bucket = event.start.strftime(BUCKETS[by]) if by else ""
        table.setdefault(bucket, Counter())[event.label] += 1
    return table


def print_summary(events: list[Event], by: str | None, console: Console) -> None:
    """Counts per class (per hour or day with `by`), each with a bar scaled to the largest."""
    if not events:
        console.print("no events")
        return
    table_counts = counts(events, by)
    top = max(n for per in table_counts.values() for n in per.values())
    table = Table(box=None, pad_edge=False)
    if by:
        table.add_column(by)
    for name in ("class", "events", ""):
        table.add_column(name, justify="right" if name == "events" else "left")
    for bucket, per in table_counts.items():
        for i, (label, n) in enumerate(sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))):
            row = [label, str(n), Bar(top, 0, n, width=30)]
            table.add_row(*([bucket if i == 0 else ""] if by else []), *row)
    console.print(table)
    first, last = iso_utc(events[0].start), iso_utc(events[-1].end)
    console.print(f"{len(events)} events from {first} to {last}")


def check_png_support() -> None:
    """EdgeAscError in one line when matplotlib is not installed: say so before reading."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EdgeAscError(
            "--png needs matplotlib: pip install matplotlib (or the 'train' extra)"
        ) from None


def write_png(events: list[Event], by: str | None, path: Path) -> None:
    """A bar chart of the counts: one bar per class, or stacked per hour/day with `by`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = counts(events, by)
    labels = sorted({label for per in table.values() for label in per})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * max(len(table), len(labels))), 4))
    if by:
        buckets = list(table)
        bottom = [0] * len(buckets)
        for label in labels:
            heights = [table[b][label] for b in buckets]
            ax.bar(buckets, heights, bottom=bottom, label=label)
            bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
        ax.legend(fontsize="small")
        ax.tick_params(axis="x", labelrotation=45)
    else:
        per = table.get("", Counter())
        ax.bar(labels, [per[label] for label in labels])
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_ylabel("events")
    ax.set_title(f"edge-asc events{f' per {by}' if by else ''}")
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as err:
        raise EdgeAscError(f"cannot write {path}: {err.strerror}") from err
    finally:
        plt.close(fig)
