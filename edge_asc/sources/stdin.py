"""Raw PCM from standard input (or any byte stream) as a live source, as arecord sends it."""

from __future__ import annotations

import os
import select
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import BinaryIO

import numpy as np

from edge_asc.audio_io import check_format
from edge_asc.errors import EdgeAscError
from edge_asc.sources.base import Source


@dataclass(frozen=True)
class PcmFormat:
    """A raw PCM sample format, named as arecord names it."""

    name: str
    dtype: str  # numpy dtype of one sample (after widening 3-byte samples)
    width: int  # bytes per sample on the wire
    scale: float  # multiply to get float32 in [-1, 1), as libsndfile does


PCM_FORMATS = MappingProxyType(
    {
        f.name: f
        for f in (
            PcmFormat("S16_LE", "<i2", 2, 1.0 / 2**15),
            PcmFormat("S24_3LE", "<i4", 3, 1.0 / 2**31),  # packed 24-bit, widened into int32
            PcmFormat("S32_LE", "<i4", 4, 1.0 / 2**31),
            PcmFormat("FLOAT_LE", "<f4", 4, 1.0),
        )
    }
)


def pcm_format(name: str) -> PcmFormat:
    try:
        return PCM_FORMATS[name.upper()]
    except KeyError:
        raise EdgeAscError(
            f"unknown PCM format {name!r}; choose one of {', '.join(PCM_FORMATS)}"
        ) from None


def decode_pcm(data: bytes, fmt: PcmFormat, channels: int) -> np.ndarray:
    """Whole frames of raw little-endian PCM -> (frames, channels) float32."""
    if fmt.width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = raw  # the 24 bits become the top of an int32: exact, sign included
        samples = wide.view("<i4").reshape(-1)
    else:
        samples = np.frombuffer(data, dtype=fmt.dtype)
    out = samples.astype(np.float32)
    if fmt.scale != 1.0:
        out *= np.float32(fmt.scale)
    return out.reshape(-1, channels)


class StdinSource(Source):
    """Raw interleaved PCM from a byte stream (standard input by default).

    For setups where PortAudio is not wanted: `arecord -f S16_LE -r 48000 -c 1 | edge-asc listen
    --stdin --rate 48000`. Reads wait on select() with the caller's timeout, so a stop request
    is seen even while the writer is silent.
    """

    def __init__(
        self,
        rate: int,
        channels: int = 1,
        sample_format: str = "S16_LE",
        stream: BinaryIO | None = None,
        block_seconds: float = 0.1,
    ) -> None:
        check_format(rate, channels, "--stdin")
        self.rate, self.channels = rate, channels
        self.format = pcm_format(sample_format)
        self._stream = stream if stream is not None else sys.stdin.buffer
        try:
            self._fd: int | None = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None  # an in-memory stream: plain blocking reads
        self._frame_bytes = self.format.width * channels
        self._max_bytes = max(1, round(block_seconds * rate)) * self._frame_bytes
        self._pending = b""
        self._eof = False
        self.description = f"stdin ({self.format.name}, {rate} Hz, {channels} ch)"

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        if self._eof:
            return None
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            data = os.read(self._fd, self._max_bytes) if ready else None
        else:
            data = self._stream.read(self._max_bytes)
        if data is None:
            return np.empty((0, self.channels), dtype=np.float32)
        if not data:
            self._eof = True  # an incomplete last frame is dropped
            return None
        data = self._pending + data
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        return decode_pcm(data[:usable], self.format, self.channels)
