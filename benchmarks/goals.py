"""The goals the figures are held to, judged on one run's figures (None: not measured here)."""

from __future__ import annotations

from edge_asc.bench.report import Goal
from edge_asc.bench.timing import Stats

FRONTEND_SPEEDUP = 5.0  # ours per hop vs librosa per hop
CPU_SHARE_PERCENT = 2.0  # of one core, real-time replay at the default hop
PEAK_RSS_MB = 80.0  # decimal megabytes
BENCH_MINUTES = 10.0


def frontend_goals(
    ours_hop: Stats, librosa_window: Stats | None, librosa_hop: Stats | None
) -> list[Goal]:
    """Per hop, librosa (which cannot stream) recomputes the 1-s window; the stricter reading
    gives it only the hop's samples. Both are judged, so neither reading hides the other."""
    name = f"front-end per 0.5-s hop >= {FRONTEND_SPEEDUP:g}x faster than librosa"
    if librosa_window is None or librosa_hop is None:
        return [Goal(name, "librosa not installed", None)]
    found = []
    for how, peer in (
        ("recomputing its 1-s window", librosa_window),
        ("on the hop's samples only", librosa_hop),
    ):
        ratio = peer.median_ms / ours_hop.median_ms
        found.append(
            Goal(
                f"{name} ({how})",
                f"{ratio:.1f}x ({peer.median_ms:.3f} ms vs {ours_hop.median_ms:.3f} ms)",
                ratio >= FRONTEND_SPEEDUP,
            )
        )
    return found


def faster_goal(name: str, ours: Stats | None, other: Stats | None) -> Goal:
    """`ours` must have the lower median latency than `other`."""
    if ours is None or other is None:
        return Goal(name, "not measured (no model to compare)", None)
    return Goal(
        name,
        f"{ours.median_ms:.3f} ms vs {other.median_ms:.3f} ms "
        f"({other.median_ms / ours.median_ms:.2f}x)",
        ours.median_ms < other.median_ms,
    )


def cpu_goal(share_percent: float | None) -> Goal:
    name = f"`listen` real time at the default hop <= {CPU_SHARE_PERCENT:g}% of one core"
    if share_percent is None:
        return Goal(name, "not measured (no /proc)", None)
    return Goal(name, f"{share_percent:.2f}%", share_percent <= CPU_SHARE_PERCENT)


def rss_goal(peak_mib: float) -> Goal:
    megabytes = peak_mib * 1.048576
    return Goal(
        f"`listen` peak RSS <= {PEAK_RSS_MB:g} MB",
        f"{megabytes:.1f} MB ({peak_mib:.1f} MiB)",
        megabytes <= PEAK_RSS_MB,
    )


def time_goal(seconds: float) -> Goal:
    return Goal(
        f"whole benchmark <= {BENCH_MINUTES:g} minutes",
        f"{seconds / 60:.1f} min",
        seconds <= BENCH_MINUTES * 60,
    )
