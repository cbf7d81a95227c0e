"""Latency statistics of candidates timed side by side, interleaved, in one process.

Interleaving (every round times each candidate once, in a rotating order) means a load spike on a
busy machine hits all candidates alike, so their ratios stay meaningful even when the absolute
figures move. The garbage collector is off while timing, as in `timeit`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stats:
    """Median and 99th percentile of one candidate's timed calls, in milliseconds."""

    median_ms: float
    p99_ms: float
    runs: int

    @classmethod
    def from_seconds(cls, samples: np.ndarray) -> Stats:
        if samples.size == 0:
            raise ValueError("no samples")
        return cls(
            float(np.median(samples) * 1e3), float(np.percentile(samples, 99) * 1e3), samples.size
        )


def measure(
    calls: Mapping[str, Callable[[], object]], runs: int, warmup: int = 5
) -> dict[str, Stats]:
    """Time every call `runs` times after `warmup` untimed calls each; rounds are interleaved."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    samples = {name: np.empty(runs) for name in names}
    clock = time.perf_counter
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(runs):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                call = calls[name]
                start = clock()
                call()
                samples[name][i] = clock() - start
    finally:
        if enabled:
            gc.enable()
    return {name: Stats.from_seconds(samples[name]) for name in names}
