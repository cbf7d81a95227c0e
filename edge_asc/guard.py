"""Guards the front-end against a live input's faults: non-finite samples and constant input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge_asc.audio_io import SAMPLE_LIMIT

DEFAULT_STUCK_SECONDS = 10.0  # identical samples for this long: a muted or stuck microphone


class InputGuard:
    """What the front-end must never see, and what a person must hear about.

    `clean` replaces NaN and infinite samples with zeros (counted) and limits the rest to
    +-SAMPLE_LIMIT, so sums, the resampler and the log stay finite whatever a float source sends.
    `watch` follows runs of identical samples: a real microphone's noise never repeats one value
    for seconds, so a run longer than `stuck_seconds` is a muted, unplugged or stuck input (all
    zeros: "silent_input"; any other constant: "stuck_input"), said once when it starts and once
    when it ends, and flagged on every window in between.
    """

    def __init__(self, rate: int, stuck_seconds: float, notify: Callable[[str], None]) -> None:
        self.notify = notify
        self.warning: str | None = None  # "silent_input" or "stuck_input" while a run lasts
        self._value = 0.0  # the constant of the current warning
        self._last: float | None = None  # the last sample seen
        self._run = 0  # identical samples ending with the last one
        self.reset(rate, stuck_seconds)

    def clean(self, block: np.ndarray) -> tuple[np.ndarray, int]:
        """(block with nothing non-finite or out of range, number of samples replaced)."""
        if block.size == 0:
            return block, 0
        finite = np.isfinite(block)
        bad = 0
        if not finite.all():
            bad = int(block.size - np.count_nonzero(finite))
            block = np.where(finite, block, np.float32(0.0))
        if block.max() > SAMPLE_LIMIT or block.min() < -SAMPLE_LIMIT:
            block = np.clip(block, -SAMPLE_LIMIT, SAMPLE_LIMIT)
        return block, bad

    def watch(self, mono: np.ndarray) -> None:
        """Follow the runs of identical samples through the next mono samples."""
        n = mono.size
        if n == 0 or not self.stuck_samples:
            return
        starts = np.flatnonzero(mono[1:] != mono[:-1]) + 1  # where a new value begins
        continues = self._last is not None and float(mono[0]) == self._last
        edges = np.concatenate(([0], starts, [n]))
        lengths = np.diff(edges)
        if continues:
            lengths[0] += self._run
        active = self.warning is not None
        if active and not continues:
            self._end(self._run)
        elif active and lengths.size > 1:
            self._end(int(lengths[0]))
        for j in np.flatnonzero(lengths >= self.stuck_samples):
            if j == 0 and continues and active:
                continue  # the run already reported
            self._start(float(mono[edges[j]]), int(lengths[j]))
            if j < lengths.size - 1:
                self._end(int(lengths[j]))
        self._run, self._last = int(lengths[-1]), float(mono[-1])

    def reset(self, rate: int, stuck_seconds: float) -> None:
        """A new device (or the same one reopened): forget the last run."""
        self.rate = rate
        self.stuck_samples = round(stuck_seconds * rate) if stuck_seconds > 0 else 0
        self.warning, self._value, self._last, self._run = None, 0.0, None, 0

    def _describe(self) -> str:
        if self._value == 0.0:
            return "silence (all zeros)"
        return f"one constant value ({self._value:.6g})"

    def _start(self, value: float, length: int) -> None:
        self._value = value
        self.warning = "silent_input" if value == 0.0 else "stuck_input"
        self.notify(
            f"warning: the input has been {self._describe()} for {length / self.rate:.1f} s: "
            "is the microphone muted, unplugged or stuck?"
        )

    def _end(self, length: int) -> None:
        seconds = length / self.rate
        self.notify(f"the input varies again after {seconds:.1f} s of {self._describe()}")
        self.warning = None
