"""Decode audio files to mono float32 at the model's rate, with user-facing errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from edge_asc.errors import EdgeAscError


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels: a stereo scene recording keeps both sides' energy."""
    data = np.asarray(data, dtype=np.float32)
    return data if data.ndim == 1 else data.mean(axis=1, dtype=np.float32)


def resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """soxr's high-quality resampler; a no-op when the rates already match."""
    if rate == target:
        return signal
    return soxr.resample(signal, rate, target, quality="HQ").astype(np.float32, copy=False)


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """The whole file as mono float32 at `sample_rate`; one-line EdgeAscError when unusable."""
    path = Path(path)
    if not path.exists():
        raise EdgeAscError(f"audio file not found: {path}")
    if path.is_dir():
        raise EdgeAscError(f"expected an audio file, got a directory: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise EdgeAscError(f"cannot read audio {path}: {reason}") from err
    if data.shape[0] == 0:
        raise EdgeAscError(f"audio file is empty: {path}")
    signal = to_mono(data)
    if not np.all(np.isfinite(signal)):
        raise EdgeAscError(f"audio file holds NaN or infinite samples: {path}")
    return resample(signal, rate, sample_rate)
