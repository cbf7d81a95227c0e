"""Streaming resampling to the model's rate, chunk by chunk."""

from __future__ import annotations

import math

import numpy as np
import soxr


class Resampler:
    """Streaming soxr resampling to the model's rate (identical to one-shot soxr.resample)."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate, self.target = rate, target
        # VHQ, not HQ: HQ rounds differently on arm64 and x86-64 (up to 1.5e-8 per sample, which
        # the INT8 model turned into 5.6e-4 of probability on a 48 kHz recording); VHQ gives the
        # same samples on both, for about 0.04 ms more per 0.5-s hop at 48 kHz.
        self._soxr = (
            None
            if rate == target
            else soxr.ResampleStream(rate, target, 1, dtype="float32", quality="VHQ")
        )

    def frames_for(self, samples: int) -> int:
        """Input frames that yield at least `samples` more output. soxr hands its output out
        in chunks of tens of milliseconds (1100 samples from 48 kHz), so 0.1 s more is asked
        for: one read then completes a window, no later than 0.1-s blocks would."""
        if self._soxr is None:
            return samples
        return math.ceil(samples * self.rate / self.target) + self.rate // 10

    def push(self, mono: np.ndarray) -> np.ndarray:
        if self._soxr is None:
            return mono
        return self._soxr.resample_chunk(mono, last=False)

    def flush(self) -> np.ndarray:
        if self._soxr is None:
            return np.empty(0, dtype=np.float32)
        return self._soxr.resample_chunk(np.empty(0, dtype=np.float32), last=True)
