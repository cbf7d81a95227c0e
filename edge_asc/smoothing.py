"""How the shown label follows the per-window probabilities: mean or EMA, hysteresis, threshold."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_asc.modelcard import check_silence_dbfs

DEFAULT_THRESHOLD = 0.3  # below this probability a label is "uncertain" (listen and classify)


def check_threshold(threshold: float) -> float:
    """ValueError unless `threshold` is a probability in [0, 1] (0: never "uncertain")."""
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:  # NaN fails too
        raise ValueError(f"threshold must be in [0, 1], not {threshold!r}")
    return float(threshold)


@dataclass(frozen=True)
class SmoothingConfig:
    """How the shown label follows the per-window probabilities, and when it is no class.

    A window below the silence level (None: the model card's, else DEFAULT_SILENCE_DBFS) is
    "silence" and restarts the smoothing; a smoothed probability below `threshold` is
    "uncertain".
    """

    method: str = "mean"  # "mean" of the last `windows` windows, or "ema" with span `windows`
    windows: int = 4  # 2 s at the default 0.5-s hop
    margin: float = 0.1  # a new label must beat the shown one's smoothed probability by this
    threshold: float = DEFAULT_THRESHOLD  # below this smoothed probability: "uncertain"
    silence_dbfs: float | None = None  # a window's RMS level below this: "silence"

    def __post_init__(self) -> None:
        if self.method not in {"mean", "ema"}:
            raise ValueError("smoothing method must be 'mean' or 'ema'")
        if self.windows < 1:
            raise ValueError("smoothing needs at least one window")
        if not 0 <= self.margin < 1 or not 0 <= self.threshold <= 1:
            raise ValueError("margin must be in [0, 1) and threshold in [0, 1]")
        if self.silence_dbfs is not None:
            check_silence_dbfs(self.silence_dbfs)


class Smoother:
    """Mean or EMA of probabilities, hysteresis on label changes, a confidence threshold."""

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self._recent: deque[np.ndarray] = deque(maxlen=self.config.windows)
        self._ema: np.ndarray | None = None
        self._current: int | None = None

    def update(self, probs: np.ndarray) -> tuple[np.ndarray, int | None, float]:
        """Smoothed probabilities, the shown class (None: uncertain), its smoothed probability."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.config.method == "mean":
            self._recent.append(probs)
            # One array, not np.mean(deque): that raises and catches an AttributeError per call.
            smoothed = np.stack(self._recent).mean(axis=0)
        else:
            alpha = 2.0 / (self.config.windows + 1)
            ema = self._ema
            smoothed = probs if ema is None else alpha * probs + (1 - alpha) * ema
            self._ema = smoothed
        best = int(np.argmax(smoothed))
        current = self._current
        if current is None or (
            best != current and smoothed[best] >= smoothed[current] + self.config.margin
        ):
            current = self._current = best
        confidence = float(smoothed[current])
        shown = current if confidence >= self.config.threshold else None
        return smoothed.astype(np.float32), shown, confidence
