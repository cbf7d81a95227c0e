"""Streaming resampling to the model's rate, chunk by chunk."""

from __future__ import annotations

import numpy as np
import soxr


class Resampler:
    """Streaming soxr resampling to the model's rate (identical to one-shot soxr.resample)."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate, self.target = rate, target
        self._soxr = (
            None
            if rate == target
            else soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
        )

    def push(self, mono: np.ndarray) -> np.ndarray:
        if self._soxr is None:
            return mono
        return self._soxr.resample_chunk(mono, last=False)

    def flush(self) -> np.ndarray:
        if self._soxr is None:
            return np.empty(0, dtype=np.float32)
        return self._soxr.resample_chunk(np.empty(0, dtype=np.float32), last=True)
