"""A file replayed as a source: every sample, fast or paced in real time; bad files refused."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from edge_asc.errors import EdgeAscError
from edge_asc.sources import FileSource


def test_file_fast_gives_every_sample(tut_clip, drain):
    expected, rate = sf.read(tut_clip, dtype="float32", always_2d=True)
    with FileSource(tut_clip, realtime=False, block_seconds=0.37) as src:
        assert (src.rate, src.channels) == (rate, 2)
        got = drain(src)
        assert src.read() is None
    np.testing.assert_array_equal(got, expected)


def test_small_blocks_are_cut_from_a_second_decoded_at_a_time(tut_clip, drain):
    expected, rate = sf.read(tut_clip, dtype="float32", always_2d=True)
    with FileSource(tut_clip, realtime=False, block_seconds=0.1) as src:
        decoded = src._file.read
        sizes: list[int] = []

        def counted(frames, **kwargs):
            sizes.append(frames)
            return decoded(frames, **kwargs)

        src._file.read = counted
        blocks = []
        while (block := src.read()) is not None:
            blocks.append(block)
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    assert {len(b) for b in blocks[:-1]} == {round(0.1 * rate)}  # the blocks asked for
    assert set(sizes) == {rate}  # each decode a second, not a block
    assert len(sizes) <= -(-len(expected) // rate) + 1


def test_file_real_time_is_paced(tmp_path, drain):
    path = tmp_path / "half.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 16000)
    with FileSource(path, realtime=True, block_seconds=0.1) as src:
        start = time.monotonic()
        first = src.read(timeout=0.0)
        assert first.shape[0] == 0  # the first 0.1 s has not "been recorded" yet
        total = first.shape[0] + drain(src, timeout=0.05).shape[0]
        elapsed = time.monotonic() - start
    assert total == 8000
    assert 0.45 <= elapsed < 2.0


@pytest.mark.parametrize("make", ["missing", "dir", "garbage"])
def test_file_errors_are_user_errors(tmp_path, make):
    path = tmp_path / "x.wav"
    if make == "dir":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(EdgeAscError, match=str(path)):
        FileSource(path)
