"""The library API: load a model, classify an array or a file, stream from a source.

The CLI is a thin layer over this; the live app's streaming builds on the same pieces.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asc.audio_io import read_audio, resample, to_mono
from edge_asc.features import LogMel, windows
from edge_asc.model import Model
from edge_asc.sources import Source
from edge_asc.stream import Prediction, SmoothingConfig, stream_predictions

DEFAULT_HOP_SECONDS = 0.5


@dataclass
class ClipResult:
    """A clip's verdict: the mean of its windows' probabilities, and the windows themselves."""

    label: str
    probabilities: dict[str, float]
    window_probabilities: np.ndarray  # (n_windows, n_classes)

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "windows": int(self.window_probabilities.shape[0]),
        }


class Classifier:
    """A model plus the front-end its card describes."""

    def __init__(self, model: str | Path | Model | None = None, threads: int = 1) -> None:
        self.model = model if isinstance(model, Model) else Model(model, threads=threads)
        self.card = self.model.card
        self.frontend = LogMel(self.card.frontend)

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def hop_frames(self, hop_seconds: float) -> int:
        return max(
            1, round(hop_seconds * self.card.frontend.sample_rate / self.card.frontend.hop_length)
        )

    def window_probabilities(
        self, signal: np.ndarray, hop_seconds: float = DEFAULT_HOP_SECONDS
    ) -> np.ndarray:
        """Probabilities of every window of a mono signal at the model's rate."""
        frames = self.frontend.compute(signal)
        return self.model.predict(
            windows(frames, self.card.window_frames, self.hop_frames(hop_seconds))
        )

    def classify_array(
        self, audio: np.ndarray, sample_rate: int, hop_seconds: float = DEFAULT_HOP_SECONDS
    ) -> ClipResult:
        """Any-rate mono or (samples, channels) audio -> the clip's verdict.

        NaN or inf samples are refused rather than guessed at: a live stream zeroes and counts
        them, but a caller handing over one array should know its data is broken.
        """
        audio = np.asarray(audio)
        if not np.isfinite(audio).all():
            raise ValueError("audio contains NaN or infinite samples")
        signal = resample(to_mono(audio), sample_rate, self.card.frontend.sample_rate)
        return self._result(self.window_probabilities(signal, hop_seconds))

    def classify_file(
        self, path: str | Path, hop_seconds: float = DEFAULT_HOP_SECONDS
    ) -> ClipResult:
        signal = read_audio(path, self.card.frontend.sample_rate)
        return self._result(self.window_probabilities(signal, hop_seconds))

    def stream(
        self,
        source: Source,
        hop_seconds: float = DEFAULT_HOP_SECONDS,
        smoothing: SmoothingConfig | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[Prediction]:
        """Predictions from a live source, one per window, until it ends or `stop` is set.

        A source that starts at a file's first sample yields exactly the windows (and so the
        probabilities) of `window_probabilities` on that file.
        """
        return stream_predictions(
            source, self.model, hop_seconds=hop_seconds, smoothing=smoothing, stop=stop
        )

    def _result(self, probs: np.ndarray) -> ClipResult:
        mean = probs.mean(axis=0)
        return ClipResult(
            label=self.labels[int(np.argmax(mean))],
            probabilities={lab: float(p) for lab, p in zip(self.labels, mean, strict=True)},
            window_probabilities=probs,
        )
