"""The goals the figures are held to, judged on one run's figures (None: not measured here).

They live with the developer's benchmarks, not in the installed app: `edge-asc bench` prints a
user's figures; bench_all.py prints each figure against the goal it is held to.
"""

from __future__ import annotations

from edge_asc.bench.report import Goal
from edge_asc.bench.timing import Stats

FRONTEND_SPEEDUP = 5.0  # ours per hop vs librosa per hop
INT8_SPEEDUP = 1.3  # fused INT8 vs fused FP32, median latency per window
CPU_SHARE_PERCENT = 1.0  # of one core, real-time replay at the default hop
PEAK_RSS_MIB = 60.0  # a real-time listener from a file or stdin, plain output and a log
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
                f"{ratio:.2f}x ({peer.median_ms:.3f} ms vs {ours_hop.median_ms:.3f} ms)",
                ratio >= FRONTEND_SPEEDUP,
            )
        )
    return found


def faster_goal(name: str, ours: Stats | None, other: Stats | None, by: float = 1.0) -> Goal:
    """`ours` must have a median latency at least `by` times lower than `other`'s."""
    if ours is None or other is None:
        return Goal(name, "not measured (no model to compare)", None)
    ratio = other.median_ms / ours.median_ms
    return Goal(
        name,
        f"{ours.median_ms:.3f} ms vs {other.median_ms:.3f} ms ({ratio:.2f}x)",
        ratio >= by,
    )


def int8_goal(int8: Stats | None, fp32: Stats | None) -> Goal:
    return faster_goal(
        f"fused INT8 >= {INT8_SPEEDUP:g}x faster than fused FP32", int8, fp32, INT8_SPEEDUP
    )


def cpu_goal(share_percent: float | None) -> Goal:
    name = f"`listen` real time at the default hop <= {CPU_SHARE_PERCENT:g}% of one core"
    if share_percent is None:
        return Goal(name, "not measured (no /proc)", None)
    return Goal(name, f"{share_percent:.2f}%", share_percent <= CPU_SHARE_PERCENT)


def rss_goal(peak_mib: float | None) -> Goal:
    name = f"`listen` real time from a file, plain output, a log: peak RSS <= {PEAK_RSS_MIB:g} MiB"
    if peak_mib is None:
        return Goal(name, "not measured (no /proc)", None)
    return Goal(name, f"{peak_mib:.1f} MiB", peak_mib <= PEAK_RSS_MIB)


def time_goal(seconds: float) -> Goal:
    return Goal(
        f"whole benchmark <= {BENCH_MINUTES:g} minutes",
        f"{seconds / 60:.1f} min",
        seconds <= BENCH_MINUTES * 60,
    )
