"""The live pipeline's consumer side: resample, frame, window, predict, smooth.

Windows line up exactly with the offline path (`Classifier.window_probabilities`): the stream's
front-end starts with the same half-window of zeros, window k spans frames
[k * hop_frames, k * hop_frames + window_frames), and a finite stream ends with the same
trailing pad. So a file streamed from its first sample gives the offline windows, however the
audio was chunked; only the new STFT frames are computed at each hop.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import soxr

from edge_asc.audio_io import to_mono
from edge_asc.features import FrontEndConfig, LogMel, windows
from edge_asc.model import Model
from edge_asc.sources import Source

UNCERTAIN = "uncertain"
SILENCE_DBFS = -120.0  # the level reported for digital silence (JSON has no -inf)


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


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale, floored at SILENCE_DBFS."""
    if samples.size == 0:
        return SILENCE_DBFS
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * float(np.log10(power)))


@dataclass
class Windows:
    """Model inputs completed by one push, with their stream positions and input levels."""

    inputs: np.ndarray  # (n, 1, n_mels, window_frames) raw log-mel
    indices: list[int]  # window k starts at frame k * hop_frames
    levels: list[float]  # dBFS of each window's samples


class WindowStream:
    """Samples at the model's rate in, complete model windows out, aligned with the offline ones."""

    def __init__(self, config: FrontEndConfig, window_frames: int, hop_frames: int) -> None:
        self.config = config
        self.window_frames, self.hop_frames = window_frames, hop_frames
        self._logmel = LogMel(config)
        self._frames = np.empty((0, config.n_mels), dtype=np.float32)
        self._frame0 = 0  # absolute index of self._frames[0]
        self._samples = np.empty(0, dtype=np.float32)
        self._sample0 = 0  # absolute index of self._samples[0]
        self._next = 0  # index of the next window to emit
        # Window k's audio: samples [k * hop, k * hop + span), centred like its frames.
        self._hop_samples = hop_frames * config.hop_length
        self._span = (window_frames - 1) * config.hop_length

    def push(self, samples: np.ndarray) -> Windows:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples = np.concatenate((self._samples, samples))
        # At most one hop of new frames per front-end call, however much audio arrived: a
        # bigger matrix product makes OpenBLAS start threads, which cost 10-70x more CPU on a
        # busy machine (measured) than the single-threaded product of one hop's frames.
        step = self._hop_samples
        if samples.size <= step:
            return self._add(self._logmel.push(samples), final=False)
        parts = [self._logmel.push(samples[i : i + step]) for i in range(0, samples.size, step)]
        return self._add(np.concatenate(parts), final=False)

    def flush(self) -> Windows:
        """End of a finite stream: the trailing pad's frames and the last windows."""
        return self._add(self._logmel.flush(), final=True)

    def _add(self, frames: np.ndarray, final: bool) -> Windows:
        if frames.size:
            self._frames = np.concatenate((self._frames, frames))
        end = self._frame0 + self._frames.shape[0]
        ready = []
        while self._next * self.hop_frames + self.window_frames <= end:
            ready.append(self._next)
            self._next += 1
        if not ready and final and self._next == 0 and self._frames.shape[0]:
            # A stream shorter than one window: tile it, as the offline path does.
            inputs = windows(self._frames, self.window_frames, self.hop_frames)[:1]
            out = Windows(inputs, [0], [dbfs(self._samples)])
            self._next = 1
            return out
        starts = [k * self.hop_frames - self._frame0 for k in ready]
        inputs = np.empty((len(ready), 1, self.config.n_mels, self.window_frames), np.float32)
        for i, start in enumerate(starts):
            inputs[i, 0] = self._frames[start : start + self.window_frames].T
        levels = [self._level(k) for k in ready]
        self._drop()
        return Windows(inputs, ready, levels)

    def _level(self, k: int) -> float:
        start = k * self._hop_samples - self._sample0
        return dbfs(self._samples[max(start, 0) : start + self._span])

    def _drop(self) -> None:
        """Forget frames and samples no future window needs."""
        first_frame = self._next * self.hop_frames
        cut = first_frame - self._frame0
        if cut > 0:
            self._frames = self._frames[cut:]
            self._frame0 = first_frame
        first_sample = self._next * self._hop_samples
        cut = first_sample - self._sample0
        if cut > 0:
            self._samples = self._samples[cut:]
            self._sample0 = first_sample


@dataclass(frozen=True)
class SmoothingConfig:
    """How the shown label follows the per-window probabilities."""

    method: str = "mean"  # "mean" of the last `windows` windows, or "ema" with span `windows`
    windows: int = 4  # 2 s at the default 0.5-s hop
    margin: float = 0.1  # a new label must beat the shown one's smoothed probability by this
    threshold: float = 0.3  # below this smoothed probability the shown label is "uncertain"

    def __post_init__(self) -> None:
        if self.method not in {"mean", "ema"}:
            raise ValueError("smoothing method must be 'mean' or 'ema'")
        if self.windows < 1:
            raise ValueError("smoothing needs at least one window")
        if not 0 <= self.margin < 1 or not 0 <= self.threshold <= 1:
            raise ValueError("margin must be in [0, 1) and threshold in [0, 1]")


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
            smoothed = np.mean(self._recent, axis=0)
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


@dataclass
class Prediction:
    """One window's verdict, as the sinks and displays see it."""

    index: int  # window number in the stream (0 = the first second)
    offset: float  # stream seconds at the window's start (the centre of its first frame)
    time: datetime  # UTC, when the window was classified
    labels: list[str]
    probabilities: np.ndarray  # this window's, (n_classes,)
    smoothed: np.ndarray  # after smoothing, (n_classes,)
    smoothed_label: str  # UNCERTAIN below the threshold
    smoothed_confidence: float
    dbfs: float  # input level of the window's samples
    overflows: int  # input overflows of the source so far
    model_id: str
    window_seconds: float = 1.0  # the window's length, so offset + this is its end

    @property
    def label(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def top_k(self, k: int, smoothed: bool = False) -> list[tuple[str, float]]:
        probs = self.smoothed if smoothed else self.probabilities
        order = np.argsort(-probs, kind="stable")[: max(k, 0)]
        return [(self.labels[i], float(probs[i])) for i in order]


def stream_predictions(
    source: Source,
    model: Model,
    hop_seconds: float = 0.5,
    smoothing: SmoothingConfig | None = None,
    stop: threading.Event | None = None,
    read_timeout: float = 0.1,
) -> Iterator[Prediction]:
    """Classify a source window by window until it ends or `stop` is set.

    Downmix and resampling happen here (never in an audio callback); every window ready after a
    read goes through the model in one batch.
    """
    card = model.card
    fe = card.frontend
    hop_frames = max(1, round(hop_seconds * fe.sample_rate / fe.hop_length))
    resampler = Resampler(source.rate, fe.sample_rate)
    windower = WindowStream(fe, card.window_frames, hop_frames)
    smoother = Smoother(smoothing)
    labels = list(model.labels)
    frame_seconds = fe.hop_length / fe.sample_rate

    def emit(ready: Windows) -> Iterator[Prediction]:
        if not ready.indices:
            return
        probs = model.predict(ready.inputs)
        now = datetime.now(timezone.utc)
        for k, p, level in zip(ready.indices, probs, ready.levels, strict=True):
            smoothed, shown, confidence = smoother.update(p)
            yield Prediction(
                index=k,
                offset=k * hop_frames * frame_seconds,
                time=now,
                labels=labels,
                probabilities=p,
                smoothed=smoothed,
                smoothed_label=UNCERTAIN if shown is None else labels[shown],
                smoothed_confidence=confidence,
                dbfs=level,
                overflows=source.overflows,
                model_id=model.id,
                window_seconds=card.window_seconds,
            )

    while stop is None or not stop.is_set():
        block = source.read(read_timeout)
        if block is None:
            yield from emit(windower.push(resampler.flush()))
            yield from emit(windower.flush())
            return
        if block.shape[0]:
            yield from emit(windower.push(resampler.push(to_mono(block))))
