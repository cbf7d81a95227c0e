"""The log-mel front-end, shared bit for bit by training and the live app.

Written by hand in NumPy because it is the hot path: frames cut from a reshape of the signal, one
`rfft` per batch of frames and a mel product over the filterbank's nonzero blocks, with no
per-frame Python loop. python-speech-features is the reference (its filterbank and log-mel,
cross-checked in the tests), but it is not streaming, recomputes everything per call and needs
SciPy, so the app does not depend on it.

Framing convention (the same offline and live): the signal is preceded by `win_length // 2` zeros,
so frame `i` is centred on sample `i * hop_length`; `flush()` appends the same number of zeros at
the end of a finite signal. One second at 16 kHz (20 ms hop, 40 ms window) is then exactly
51 frames.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

# Sane bounds for a front-end read from a model card (see FrontEndConfig.__post_init__).
MIN_MODEL_RATE, MAX_MODEL_RATE = 8000, 192000  # Hz
MAX_MELS = 512
WINDOWS = frozenset({"hamming", "hanning", "blackman", "bartlett", "ones"})
MIN_FFT, MAX_FFT = 16, 65536


@dataclass(frozen=True)
class FrontEndConfig:
    """Every front-end constant; training writes it into the model file, the app reads it back."""

    sample_rate: int = 16000  # Hz; the shared data's rate and the default model's
    n_mels: int = 40  # mel bands (the DCASE 2022 baseline's input height)
    win_length: int = 640  # samples: a 40 ms analysis window
    hop_length: int = 320  # samples: 20 ms between frames, so 51 frames per second
    n_fft: int = 1024  # the window is zero-padded to this length before the FFT
    fmin: float = 0.0  # Hz, lowest mel band edge
    fmax: float = 8000.0  # Hz, highest mel band edge (Nyquist at 16 kHz)
    window: str = "hamming"  # numpy window function name; python-speech-features defaults to none
    log_floor: float = 1e-10  # mel power is clipped here before the log, so silence stays finite

    def __post_init__(self) -> None:
        # A card is untrusted input: a float n_fft or a NaN fmax would fail deep in NumPy, an
        # absurd rate made soxr crash and a stream allocate gigabytes, so types and ranges first.
        for name in ("sample_rate", "n_mels", "win_length", "hop_length", "n_fft"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, not {value!r}")
        for name in ("fmin", "fmax", "log_floor"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, not {value!r}")
        if not MIN_MODEL_RATE <= self.sample_rate <= MAX_MODEL_RATE:
            raise ValueError(
                f"sample_rate {self.sample_rate} Hz is outside {MIN_MODEL_RATE}-{MAX_MODEL_RATE} Hz"
            )
        if not 1 <= self.n_mels <= MAX_MELS:
            raise ValueError(f"n_mels must be in [1, {MAX_MELS}], not {self.n_mels}")
        if not MIN_FFT <= self.n_fft <= MAX_FFT:
            raise ValueError(f"n_fft must be in [{MIN_FFT}, {MAX_FFT}], not {self.n_fft}")
        if self.hop_length <= 0:
            raise ValueError("hop_length must be positive")
        if not 0 < self.log_floor < 1:
            raise ValueError("log_floor must be in (0, 1)")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError("win_length must be in (0, n_fft]")
        if self.hop_length > self.win_length:
            # Frames that skip samples between them: no use for a scene, and a stream would
            # have to carry the skip across pushes.
            raise ValueError("hop_length must not exceed win_length")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError("need 0 <= fmin < fmax <= sample_rate / 2")
        if not isinstance(self.window, str) or self.window not in WINDOWS:
            raise ValueError(f"unknown window {self.window!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontEndConfig:
        if not isinstance(data, dict):
            raise ValueError("the front-end must be an object of parameters")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown front-end parameters: {sorted(unknown)}")
        return cls(**data)

    def frames_for(self, seconds: float) -> int:
        """Frames produced by `seconds` of audio plus both half-window pads (51 for 1 s)."""
        return round(seconds * self.sample_rate) // self.hop_length + 1


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_matrix(config: FrontEndConfig) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32: python-speech-features' triangular filterbank.

    The same construction (HTK mel scale, band edges floored to FFT bins) written out here
    because importing python-speech-features pulls in SciPy, some 100 MB on a Pi for ten lines;
    a test pins it equal to `python_speech_features.get_filterbanks`.
    """
    edges = np.linspace(_hz_to_mel(config.fmin), _hz_to_mel(config.fmax), config.n_mels + 2)
    bins = np.floor((config.n_fft + 1) * _mel_to_hz(edges) / config.sample_rate).astype(int)
    fb = np.zeros((config.n_mels, config.n_fft // 2 + 1))
    for j in range(config.n_mels):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        fb[j, lo:mid] = (np.arange(lo, mid) - lo) / (mid - lo)
        fb[j, mid:hi] = (hi - np.arange(mid, hi)) / (hi - mid)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


def analysis_window(config: FrontEndConfig) -> np.ndarray:
    if config.window == "ones":
        return np.ones(config.win_length, dtype=np.float32)
    return getattr(np, config.window)(config.win_length).astype(np.float32)


class LogMel:
    """Log-mel frames of a signal, offline or in a stream.

    `push(samples)` returns only the frames completed by those samples; `flush()` ends the stream.
    Pushing a whole clip then flushing gives exactly what `compute(clip)` gives, however chunked.
    """

    def __init__(self, config: FrontEndConfig | None = None) -> None:
        self.config = config or FrontEndConfig()
        # float64 inside the frame maths: NumPy's float64 rfft measured 3x faster than its float32
        # one here, and float64 sums make the frames independent of how the stream was chunked.
        # The 1/n_fft power scaling of python-speech-features' powspec is folded into the matrix.
        self._bands = mel_bands(mel_matrix(self.config).astype(np.float64) / self.config.n_fft)
        self._window = analysis_window(self.config).astype(np.float64)
        # A stream asks for as many frames at every hop: their zero-padded FFT input is built once.
        self._stream_padded = self._padded(0)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: the pending samples are the leading half-window of zeros."""
        self._pending = np.zeros(self.config.win_length // 2, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append mono samples at the config's rate; return the new frames, (n, n_mels) float32."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        buf = np.concatenate((self._pending, samples)) if samples.size else self._pending
        win, hop = self.config.win_length, self.config.hop_length
        n = 0 if buf.size < win else (buf.size - win) // hop + 1
        if len(self._stream_padded) != n:
            self._stream_padded = self._padded(n)
        out = self._frames(buf, self._stream_padded)
        self._pending = buf[n * hop :].copy() if n else buf
        return out

    def flush(self) -> np.ndarray:
        """End the stream with the trailing half-window of zeros; return the last frames."""
        out = self.push(np.zeros(self.config.win_length // 2, dtype=np.float32))
        self.reset()
        return out

    def compute(self, signal: np.ndarray) -> np.ndarray:
        """All frames of a finite mono signal (the offline path), (n, n_mels) float32.

        Stateless: the same half-window pads as a stream from reset() to flush(), in one go.
        """
        pad = np.zeros(self.config.win_length // 2, dtype=np.float32)
        buf = np.concatenate((pad, np.asarray(signal, dtype=np.float32).reshape(-1), pad))
        win, hop = self.config.win_length, self.config.hop_length
        n = 0 if buf.size < win else (buf.size - win) // hop + 1
        return self._frames(buf, self._padded(n))

    def _padded(self, n: int) -> np.ndarray:
        """FFT input for `n` frames, (n, n_fft) float64: each frame is written into the first
        win_length columns and the rest stay zero, so the rfft needs no padded copy of its own."""
        return np.zeros((n, self.config.n_fft))

    def _frames(self, buf: np.ndarray, padded: np.ndarray) -> np.ndarray:
        n = len(padded)
        if n == 0:
            return np.empty((0, self.config.n_mels), dtype=np.float32)
        self._window_into(buf, padded)
        spec = np.fft.rfft(padded, axis=1)
        squares = np.square(spec.view(np.float64))  # real and imaginary parts interleaved
        power = squares[:, 0::2] + squares[:, 1::2]
        mel = np.empty((n, self.config.n_mels))
        for band in self._bands:
            for i in range(0, n, band.rows):
                np.matmul(
                    power[i : i + band.rows, band.bins],
                    band.weights,
                    out=mel[i : i + band.rows, band.mels],
                )
        return np.log(np.maximum(mel, self.config.log_floor)).astype(np.float32)

    def _window_into(self, buf: np.ndarray, padded: np.ndarray) -> None:
        """Write the windowed frames of `buf` into the first win_length columns of `padded`.

        Frames are cut from a reshape of the signal into hop-long blocks (frame i is blocks i,
        i+1, ... laid end to end). Not through as_strided or sliding_window_view: they build
        their views through __array_interface__, whose short-lived interned key strings make
        CPython 3.11 regrow its interned-string table every hour or so, ~1 MB of RSS each time
        (benchmarks/soak.py). Not by an index array either: 34 us per hop against 22, and
        128 KB more to keep in cache.
        """
        win, hop, n = self.config.win_length, self.config.hop_length, len(padded)
        per_frame = -(-win // hop)  # blocks a frame spans, the last one possibly in part
        need = (n + per_frame - 1) * hop
        if buf.size < need:  # only the unread tail of the last block is missing
            buf = np.concatenate((buf, np.zeros(need - buf.size, dtype=buf.dtype)))
        blocks = buf[:need].reshape(-1, hop)
        for j in range(per_frame):
            cols = slice(j * hop, min((j + 1) * hop, win))
            width = cols.stop - cols.start
            np.multiply(blocks[j : j + n, :width], self._window[cols], out=padded[:, cols])


BANDS = 4  # groups of neighbouring mel filters, each multiplied over its own bins only
# OpenBLAS hands matrix products of more than about 500k multiply-adds to its thread pool, which
# measured 100-1000x more CPU on a busy 2-core machine; products are cut in frames to stay under.
ONE_THREAD_MACS = 250_000


@dataclass(frozen=True)
class MelBand:
    """Neighbouring mel filters and the FFT bins they cover: a dense block of the mel matrix."""

    bins: slice
    mels: slice
    weights: np.ndarray  # (bins, mels), C-contiguous
    rows: int  # frames per product, so that it stays on the calling thread


def mel_bands(matrix: np.ndarray, groups: int = BANDS) -> list[MelBand]:
    """The mel matrix cut into diagonal blocks, so the product skips most of its zeros.

    Each triangular filter covers at most a few dozen of the 513 bins, so 95 % of a dense
    (frames x 513) @ (513 x 40) product multiplies by zero; four blocks do a quarter of its work
    and measured about 1.6x as fast (two or three blocks are as fast; more cost in calls).
    Every nonzero weight still meets its bin, so only the float64 summation order can change:
    on all 2,148 shared clips the float32 frames came out identical to the dense product's.
    """
    n_mels = matrix.shape[1]
    used = matrix != 0
    cuts = np.linspace(0, n_mels, min(groups, n_mels) + 1).round().astype(int)
    bands = []
    for first, last in itertools.pairwise(cuts):
        covered = np.flatnonzero(used[:, first:last].any(axis=1))
        lo, hi = (int(covered[0]), int(covered[-1]) + 1) if covered.size else (0, 0)
        weights = np.ascontiguousarray(matrix[lo:hi, first:last])
        rows = max(1, ONE_THREAD_MACS // max(1, weights.size))
        bands.append(MelBand(slice(lo, hi), slice(int(first), int(last)), weights, rows))
    return bands


def tile_to_window(frames: np.ndarray, window_frames: int) -> np.ndarray:
    """A clip shorter than one window, repeated to one window's length; longer clips as they are."""
    n_frames = frames.shape[0]
    if n_frames == 0:
        raise ValueError("no frames to make a window from")
    if n_frames >= window_frames:
        return frames
    reps = -(-window_frames // n_frames)
    return np.tile(frames, (reps, 1))[:window_frames]


def windows(frames: np.ndarray, window_frames: int, hop_frames: int) -> np.ndarray:
    """Model inputs from a clip's frames: (n_windows, 1, n_mels, window_frames) float32.

    A clip shorter than one window is tiled to one window (as the training data was: UrbanSound8K
    loops short events), so a short clip still yields a prediction instead of an error.
    """
    frames = tile_to_window(frames, window_frames)
    n_frames = frames.shape[0]
    starts = range(0, n_frames - window_frames + 1, hop_frames)
    out = np.stack([frames[s : s + window_frames].T for s in starts])
    return out[:, None, :, :].astype(np.float32, copy=False)
