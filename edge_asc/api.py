"""The library API: load a model, classify an array or a file, stream from a source.

The CLI is a thin layer over this; the live app's streaming builds on the same pieces. A clip is
classified as the live stream does it (resample, frame, window, predict, block by block), so a
file of any length is classified in bounded memory: only the sums of its windows' probabilities
are kept, and, when asked for, one small row per window.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asc.audio_io import MAX_RATE, MIN_RATE, SAMPLE_LIMIT, iter_blocks, open_audio, to_mono
from edge_asc.errors import EdgeAscError
from edge_asc.features import LogMel, windows
from edge_asc.level import FLOOR_DBFS
from edge_asc.model import Model
from edge_asc.modelcard import SILENCE, UNCERTAIN
from edge_asc.prediction import Prediction
from edge_asc.resampling import Resampler
from edge_asc.smoothing import DEFAULT_THRESHOLD, SmoothingConfig, check_threshold
from edge_asc.sources import Source
from edge_asc.stream import stream_predictions
from edge_asc.windowing import Windows, WindowStream

DEFAULT_HOP_SECONDS = 0.5
MAX_ARRAY_CHANNELS = 8  # more "channels" than this is a channels-first array, not a recording
CLASSIFY_BLOCK = 1 << 16  # frames read and resampled at a time: 1.4 s at 48 kHz, ~1 MB stereo


@dataclass
class ClipResult:
    """A clip's verdict: the mean of its windows' probabilities, and what to call it.

    `label` is the model's best class, or SILENCE when every window was below the silence level.
    `verdict` is what `edge-asc classify` reports: the label, or UNCERTAIN when the label's mean
    probability is below the threshold. Silent windows are left out of the mean (a recording
    with a minute of sound in an hour of silence is that minute's sound); an all-silent clip's
    probabilities are the mean over all its windows.
    """

    label: str
    probabilities: dict[str, float]
    window_probabilities: np.ndarray | None  # (n_windows, n_classes), when kept
    windows: int = 0
    silent_windows: int = 0
    loudest_dbfs: float = FLOOR_DBFS  # the loudest window's RMS level
    verdict: str = ""

    @property
    def confidence(self) -> float:
        """The label's mean probability; 1.0 for silence, which the level decides, not the model."""
        return 1.0 if self.label == SILENCE else self.probabilities[self.label]

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.verdict,
            "probabilities": self.probabilities,
            "windows": self.windows,
            "silent_windows": self.silent_windows,
            "loudest_dbfs": round(self.loudest_dbfs, 2),
        }


class _Tally:
    """Running sums over a clip's windows, so that the clip's mean needs no list of them."""

    def __init__(self, model: Model, silence_dbfs: float, keep: bool) -> None:
        self.model, self.silence_dbfs = model, silence_dbfs
        n = len(model.labels)
        self.sound_sum = np.zeros(n, dtype=np.float64)  # over windows above the silence level
        self.all_sum = np.zeros(n, dtype=np.float64)
        self.windows = self.silent = 0
        self.loudest = FLOOR_DBFS
        self.kept: list[np.ndarray] | None = [] if keep else None

    def add(self, done: Windows) -> None:
        if not done.indices:
            return
        probs = self.model.predict(done.inputs)
        levels = np.asarray(done.levels, dtype=np.float64)
        silent = levels < self.silence_dbfs
        self.all_sum += probs.sum(axis=0, dtype=np.float64)
        self.sound_sum += probs[~silent].sum(axis=0, dtype=np.float64)
        self.windows += len(done.indices)
        self.silent += int(silent.sum())
        self.loudest = max(self.loudest, float(levels.max()))
        if self.kept is not None:
            self.kept.append(probs)

    def result(self, labels: list[str], threshold: float) -> ClipResult:
        sound = self.windows - self.silent
        mean = self.sound_sum / sound if sound else self.all_sum / self.windows
        best = int(np.argmax(mean))
        label = labels[best] if sound else SILENCE
        verdict = UNCERTAIN if sound and mean[best] < threshold else label
        kept = None
        if self.kept is not None:
            kept = np.concatenate(self.kept) if self.kept else np.empty((0, len(labels)))
        return ClipResult(
            label=label,
            probabilities={lab: float(p) for lab, p in zip(labels, mean, strict=True)},
            window_probabilities=kept,
            windows=self.windows,
            silent_windows=self.silent,
            loudest_dbfs=self.loudest,
            verdict=verdict,
        )


def _as_real(value: object) -> float | None:
    """A Python or NumPy int or float as a float (inf beyond float's range); None for anything
    else, bools included: True is no number of Hz or seconds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return None
    try:
        return float(value)
    except OverflowError:  # an int of over 308 digits
        return math.inf if value > 0 else -math.inf


def _check_rate(sample_rate: object) -> int:
    """A whole number of Hz within what the file reader takes; ValueError otherwise."""
    rate = _as_real(sample_rate)
    if rate is None:
        raise ValueError(f"sample_rate must be a number of Hz, not {sample_rate!r}")
    if not math.isfinite(rate) or rate != round(rate) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(
            f"sample_rate must be a whole number of Hz from {MIN_RATE} to {MAX_RATE}, "
            f"not {sample_rate!r}"
        )
    return int(rate)


def _as_frames(audio: object) -> np.ndarray:
    """(samples,) or (samples, channels) of a numeric dtype as (samples, channels); ValueError
    for what would be guessed at: a channels-first array, no samples, not numbers."""
    array = np.asarray(audio)
    shape = array.shape
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"audio must hold integer or float samples, not {array.dtype} "
            "(integers are scaled by their type's range, floats taken as full scale 1.0)"
        )
    if array.ndim == 1:
        array = array[:, None]
    elif array.ndim != 2:
        raise ValueError(
            f"audio must be (samples,) or (samples, channels), not of shape {array.shape}"
        )
    samples, channels = array.shape
    if samples == 0 or channels == 0:
        raise ValueError(f"no audio: the array of shape {shape} holds no samples")
    if channels > MAX_ARRAY_CHANNELS:
        hint = "; it looks channels-first: pass audio.T" if samples <= MAX_ARRAY_CHANNELS else ""
        raise ValueError(
            f"audio of shape {array.shape} has {channels} channels, more than "
            f"{MAX_ARRAY_CHANNELS}: pass (samples, channels){hint}"
        )
    return array


def _to_float(block: np.ndarray) -> np.ndarray:
    """Samples as float32 at full scale 1.0: integers by their range (uint as offset binary, as
    in 8-bit WAV), floats as they are; NaN or inf refused, the rest limited to +-SAMPLE_LIMIT."""
    kind = block.dtype.kind
    if kind == "f":
        if not np.isfinite(block).all():
            raise ValueError("audio contains NaN or infinite samples")
        return np.clip(block, -SAMPLE_LIMIT, SAMPLE_LIMIT).astype(np.float32, copy=False)
    half = float(2 ** (8 * block.dtype.itemsize - 1))
    shifted = block.astype(np.float64) - (half if kind == "u" else 0.0)
    return (shifted / half).astype(np.float32)


class Classifier:
    """A model plus the front-end its card describes."""

    def __init__(self, model: str | Path | Model | None = None, threads: int = 1) -> None:
        self.model = model if isinstance(model, Model) else Model(model, threads=threads)
        self.card = self.model.card
        self.frontend = LogMel(self.card.frontend)

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @property
    def min_seconds(self) -> float:
        """The shortest input that gets a window: half a window (shorter is refused)."""
        fe = self.card.frontend
        return (self.card.window_frames - 1) * fe.hop_length // 2 / fe.sample_rate

    def _shortfall(self, seconds: float) -> str:
        return f"{seconds:.3g} s, under the {self.min_seconds:g} s a window needs"

    def hop_frames(self, hop_seconds: float) -> int:
        hop = _as_real(hop_seconds)
        if hop is None or not 0 < hop <= 3600:
            raise ValueError(f"hop_seconds must be in (0, 3600], not {hop_seconds!r}")
        return max(1, round(hop * self.card.frontend.sample_rate / self.card.frontend.hop_length))

    def window_probabilities(
        self, signal: np.ndarray, hop_seconds: float = DEFAULT_HOP_SECONDS
    ) -> np.ndarray:
        """Probabilities of every window of a mono signal at the model's rate, all at once.

        The offline path, with the whole signal in memory; classify_array and classify_file
        stream instead and give the same windows.
        """
        frames = self.frontend.compute(signal)
        return self.model.predict(
            windows(frames, self.card.window_frames, self.hop_frames(hop_seconds))
        )

    def classify_array(
        self,
        audio: np.ndarray,
        sample_rate: int,
        hop_seconds: float = DEFAULT_HOP_SECONDS,
        threshold: float = DEFAULT_THRESHOLD,
        silence_dbfs: float | None = None,
        keep_windows: bool = True,
    ) -> ClipResult:
        """(samples,) or (samples, channels <= 8) audio at any rate -> the clip's verdict.

        Integer PCM is scaled by its type's range (int16 by 32768), floats are full scale 1.0.
        What would be a guess is a ValueError: a channels-first array, an empty or too short
        one (under half a window), NaN or inf samples (a live stream zeroes and counts them, but
        a caller handing over one array should know its data is broken), an absurd rate.
        """
        frames = _as_frames(audio)
        rate = _check_rate(sample_rate)
        blocks = (
            _to_float(frames[i : i + CLASSIFY_BLOCK])
            for i in range(0, frames.shape[0], CLASSIFY_BLOCK)
        )
        tally = self._tally(blocks, rate, hop_seconds, threshold, silence_dbfs, keep_windows)
        if not tally.windows:
            raise ValueError(f"audio too short: {self._shortfall(frames.shape[0] / rate)}")
        return tally.result(self.labels, threshold)

    def classify_file(
        self,
        path: str | Path,
        hop_seconds: float = DEFAULT_HOP_SECONDS,
        threshold: float = DEFAULT_THRESHOLD,
        silence_dbfs: float | None = None,
        keep_windows: bool = True,
    ) -> ClipResult:
        """A file of any length, read block by block: its verdict, as classify_array's.

        A broken or unusable file, or one shorter than half a window, is one EdgeAscError line.
        """
        with open_audio(path) as sound:
            rate, total = int(sound.samplerate), sound.frames
            blocks = (_file_block(b, path) for b in iter_blocks(sound, path, CLASSIFY_BLOCK))
            tally = self._tally(blocks, rate, hop_seconds, threshold, silence_dbfs, keep_windows)
        if not tally.windows:
            raise EdgeAscError(f"audio file is too short: {path} ({self._shortfall(total / rate)})")
        return tally.result(self.labels, threshold)

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

    def _tally(
        self,
        blocks: Iterable[np.ndarray],
        rate: int,
        hop_seconds: float,
        threshold: float,
        silence_dbfs: float | None,
        keep: bool,
    ) -> _Tally:
        """Blocks of (n, channels) float32 at `rate` through the live stream's pieces."""
        check_threshold(threshold)
        fe = self.card.frontend
        windower = WindowStream(fe, self.card.window_frames, self.hop_frames(hop_seconds))
        tally = _Tally(self.model, self.card.silence_level(silence_dbfs), keep)
        resampler = Resampler(rate, fe.sample_rate)
        for block in blocks:
            tally.add(windower.push(resampler.push(to_mono(block))))
        tally.add(windower.push(resampler.flush()))
        tally.add(windower.flush())
        return tally


def _file_block(block: np.ndarray, path: str | Path) -> np.ndarray:
    """A decoded block, refused if the file holds NaN or inf (it is broken), else limited to
    +-SAMPLE_LIMIT: float files can hold any finite value, and the resampler would overflow."""
    if not np.isfinite(block).all():
        raise EdgeAscError(f"audio file holds NaN or infinite samples: {path}")
    return np.clip(block, -SAMPLE_LIMIT, SAMPLE_LIMIT)
