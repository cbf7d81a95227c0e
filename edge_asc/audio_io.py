"""Decode audio files to mono float32 at the model's rate, with user-facing errors.

Every file goes through `open_audio` first, which turns whatever is wrong with it into one
EdgeAscError line: missing, a directory or other non-file (a FIFO would block the reader for
ever), unreadable, not audio, empty, truncated, or of a rate or channel count edge-asc does not
take. Decoding then reads in bounded blocks, so a header that claims more audio than the file
holds cannot make the reader allocate for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from edge_asc.errors import EdgeAscError, check_regular_file

if TYPE_CHECKING:
    import soundfile as sf

MIN_RATE, MAX_RATE = 8000, 384000  # Hz: telephone band to the fastest audio interfaces
MAX_CHANNELS = 32
SAMPLE_LIMIT = 1.0e4  # 80 dB above full scale: no real input; keeps sums and the resampler finite
READ_BLOCK = 1 << 20  # frames decoded per call
# libsndfile's own diagnosis of a header that promises more data than the file holds, e.g.
# "data : 128000 (should be 63978)". A streamed WAV (arecord into a pipe) promises ~2**31 bytes.
_TRUNCATED = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMED_LENGTH = 0x7FFF0000


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels: a stereo scene recording keeps both sides' energy."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        return data
    # Channel by channel, not data.mean(axis=1): NumPy reduces a short inner axis row by row,
    # 0.52 ms for a 0.5-s hop of 48-kHz stereo against 0.04 ms here, on the live path's every hop.
    mono = data[:, 0].copy()
    for channel in range(1, data.shape[1]):
        mono += data[:, channel]
    mono /= np.float32(data.shape[1])
    return mono


def resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """soxr's very-high-quality resampler (the same as the stream's, see `Resampler`)."""
    if rate == target:
        return signal
    return soxr.resample(signal, rate, target, quality="VHQ").astype(np.float32, copy=False)


def check_format(rate: int, channels: int, what: str) -> None:
    """EdgeAscError unless `rate` and `channels` are within what the pipeline takes."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise EdgeAscError(
            f"{what}: unsupported sample rate {rate} Hz (edge-asc takes {MIN_RATE} to "
            f"{MAX_RATE} Hz)"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise EdgeAscError(
            f"{what}: unsupported channel count {channels} (edge-asc takes 1 to {MAX_CHANNELS})"
        )


def decode_errors() -> tuple[type[BaseException], ...]:
    """What libsndfile raises for a file it cannot read. soundfile (cffi and libsndfile, 3.2 MiB
    of a listener's memory) is imported only where a file is opened, so a listener on stdin or
    a microphone never loads it."""
    import soundfile

    return (soundfile.LibsndfileError, RuntimeError, ValueError, OSError, MemoryError)


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_audio(path: str | Path) -> sf.SoundFile:
    """An open, checked SoundFile positioned at its first frame (see the module's docstring)."""
    path = Path(path)
    check_regular_file(path, "audio", "audio file not found", "an audio file")
    try:
        with open(path, "rb"):  # libsndfile says only "System error" when it may not read
            pass
    except OSError as err:
        raise EdgeAscError(f"cannot read audio {path}: {err.strerror}") from err
    import soundfile

    try:
        sound = soundfile.SoundFile(str(path))
    except decode_errors() as err:
        raise EdgeAscError(f"cannot read audio {path}: {_reason(err)}") from err
    try:
        check_format(int(sound.samplerate), int(sound.channels), f"audio file {path}")
        if sound.frames == 0:
            raise EdgeAscError(f"audio file is empty: {path}")
        _check_complete(sound, path)
    except BaseException:
        sound.close()
        raise
    return sound


def _check_complete(sound: sf.SoundFile, path: Path) -> None:
    """A file cut short: libsndfile either says so in its log or cannot reach the last frame."""
    truncated = EdgeAscError(f"audio file is truncated (cut short, or damaged): {path}")
    for declared, actual in _TRUNCATED.findall(sound.extra_info):
        if int(actual) < int(declared) < _STREAMED_LENGTH:
            raise truncated
    if not sound.seekable():
        return
    try:
        sound.seek(sound.frames - 1)
        last = sound.read(1, dtype="float32", always_2d=True)
        sound.seek(0)
    except decode_errors() as err:
        raise truncated from err
    if last.shape[0] != 1:
        raise truncated


def iter_blocks(
    sound: sf.SoundFile, path: str | Path, frames: int = READ_BLOCK
) -> Iterator[np.ndarray]:
    """The rest of an open file, `frames` at a time, as (n, channels) float32 blocks.

    What a damaged file raises mid-way becomes one EdgeAscError line, as when it is opened.
    """
    while True:
        try:
            block = sound.read(frames, dtype="float32", always_2d=True)
        except decode_errors() as err:
            raise EdgeAscError(f"cannot read audio {path}: {_reason(err)}") from err
        if block.shape[0]:
            yield block
        if block.shape[0] < frames:
            return


def read_blocks(sound: sf.SoundFile, path: str | Path) -> np.ndarray:
    """The rest of an open file as (frames, channels) float32, read in bounded blocks."""
    blocks = list(iter_blocks(sound, path))
    if not blocks:
        raise EdgeAscError(f"audio file is empty: {path}")
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """The whole file as mono float32 at `sample_rate`; one-line EdgeAscError when unusable.

    Offline classification refuses NaN or infinite samples (the file is broken); the live
    stream instead replaces them and says so (guard.InputGuard).
    """
    with open_audio(path) as sound:
        rate = int(sound.samplerate)
        data = read_blocks(sound, path)
    if not np.all(np.isfinite(data)):
        raise EdgeAscError(f"audio file holds NaN or infinite samples: {path}")
    # Float files can hold any finite value; beyond the limit the resampler would overflow.
    signal = resample(to_mono(np.clip(data, -SAMPLE_LIMIT, SAMPLE_LIMIT)), rate, sample_rate)
    if signal.size == 0:  # a few samples at a higher rate resample to none
        raise EdgeAscError(f"audio file is too short: {path}")
    return signal
