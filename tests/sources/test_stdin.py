"""Raw PCM on stdin: every format decoded as libsndfile decodes it, split frames, timeouts."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
import soundfile as sf

from edge_asc.errors import EdgeAscError
from edge_asc.sources import StdinSource, decode_pcm, pcm_format


def pcm_bytes(path, dtype: str) -> tuple[bytes, np.ndarray]:
    data, _ = sf.read(path, dtype=dtype, always_2d=True)
    return data.tobytes(), sf.read(path, dtype="float32", always_2d=True)[0]


def test_stdin_s16_matches_libsndfile_and_survives_split_frames(us8k_clip, drain):
    raw, expected = pcm_bytes(us8k_clip, "int16")

    class Dribble(io.RawIOBase):
        """Hands out 333 bytes at a time: frames split across reads."""

        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, n: int = -1) -> bytes:
            out, self.data = self.data[:333], self.data[333:]
            return out

    src = StdinSource(16000, 1, "S16_LE", stream=Dribble(raw), block_seconds=0.01)
    np.testing.assert_array_equal(drain(src), expected)


def test_stdin_24_bit_packed_matches_libsndfile(tut_clip, drain):
    data, _ = sf.read(tut_clip, dtype="int32", always_2d=True, frames=48000)
    packed = (data >> 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    expected, _ = sf.read(tut_clip, dtype="float32", always_2d=True, frames=48000)
    src = StdinSource(48000, 2, "s24_3le", stream=io.BytesIO(packed))
    np.testing.assert_array_equal(drain(src), expected)


@pytest.mark.parametrize("name", ["S32_LE", "FLOAT_LE"])
def test_stdin_other_formats(name):
    values = np.array([0.0, 0.5, -0.25, -1.0], dtype=np.float32)
    fmt = pcm_format(name)
    raw = (values * (2**31) if name == "S32_LE" else values).astype(fmt.dtype).tobytes()
    np.testing.assert_array_equal(decode_pcm(raw, fmt, 2), values.reshape(2, 2))


def test_stdin_drops_an_incomplete_last_frame_and_ends():
    src = StdinSource(16000, 1, "S16_LE", stream=io.BytesIO(b"\x00\x40\x00"))
    assert src.read().tolist() == [[0.5]]
    assert src.read() is None


def test_stdin_pipe_waits_at_most_the_timeout():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb", buffering=0) as reader:
        src = StdinSource(16000, 1, "S16_LE", stream=reader)
        start = time.monotonic()
        assert src.read(timeout=0.2).shape == (0, 1)  # nothing written: back after the timeout
        assert 0.15 < time.monotonic() - start < 1.5
        os.write(write_fd, np.array([16384, -16384], dtype="<i2").tobytes())
        np.testing.assert_array_equal(src.read(timeout=1.0)[:, 0], [0.5, -0.5])
        os.close(write_fd)
        assert src.read(timeout=1.0) is None


def test_unknown_pcm_format():
    with pytest.raises(EdgeAscError, match="S16_LE"):
        pcm_format("mp3")
