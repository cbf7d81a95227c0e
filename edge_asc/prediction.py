"""The record of one classified window: what the stream yields and the sinks and displays show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge_asc.modelcard import SILENCE

# Warnings a window can carry. The first two hold for as long as the input stays constant; the
# others go on the first window after the event (see edge_asc.stream.LiveStream).
LASTING_WARNINGS = ("silent_input", "stuck_input")
WARNINGS = (*LASTING_WARNINGS, "nonfinite_samples", "input_overflow", "reconnected")


@dataclass
class Prediction:
    """One window's verdict, as the sinks and displays see it."""

    index: int  # window number in the stream (0 = the first second)
    offset: float  # stream seconds at the window's start (the centre of its first frame)
    time: datetime  # UTC, when the window was classified
    labels: list[str]
    probabilities: np.ndarray  # this window's, (n_classes,)
    smoothed: np.ndarray  # after smoothing, (n_classes,)
    smoothed_label: str  # UNCERTAIN below the threshold, SILENCE for a silent window
    smoothed_confidence: float
    dbfs: float  # input level of the window's samples
    overflows: int  # input overflows of the source so far
    model_id: str
    window_seconds: float = 1.0  # the window's length, so offset + this is its end
    nonfinite: int = 0  # NaN or infinite input samples replaced by zeros so far
    reconnects: int = 0  # times the input device was lost and opened again so far
    warnings: tuple[str, ...] = ()  # WARNINGS that hold for this window
    silent: bool = False  # below the silence level: labelled SILENCE, whatever the model said

    @property
    def label(self) -> str:
        """The window's top class, or SILENCE: the model's guess at nothing is no sound."""
        if self.silent:
            return SILENCE
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def top_k(self, k: int, smoothed: bool = False) -> list[tuple[str, float]]:
        probs = self.smoothed if smoothed else self.probabilities
        order = np.argsort(-probs, kind="stable")[: max(k, 0)]
        return [(self.labels[i], float(probs[i])) for i in order]
