"""Windowing: the streamed window inputs equal the offline ones, whatever the chunking; levels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asc.features import FrontEndConfig, LogMel, windows
from edge_asc.level import FLOOR_DBFS, dbfs
from edge_asc.windowing import WindowStream


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 12000), min_size=1, max_size=12))
def test_window_stream_any_chunking(sizes):
    """Window inputs (no model) are bit-identical to the offline windows for any chunking."""
    config = FrontEndConfig()
    rng = np.random.default_rng(len(sizes))
    signal = (0.2 * rng.standard_normal(40000)).astype(np.float32)
    expected = windows(LogMel(config).compute(signal), 51, 25)
    stream, got, pos = WindowStream(config, 51, 25), [], 0
    for n in [*sizes, signal.size]:
        out = stream.push(signal[pos : pos + n])
        got.append(out.inputs)
        pos += n
        if pos >= signal.size:
            break
    got.append(stream.flush().inputs)
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_window_levels():
    config = FrontEndConfig()
    t = np.arange(48000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    tone[24000:] = 0.0  # one and a half seconds of full-scale sine, then silence
    stream = WindowStream(config, 51, 25)
    levels = stream.push(tone).levels + stream.flush().levels
    assert levels[0] == pytest.approx(-3.01, abs=0.01)  # a full-scale sine's RMS
    assert levels[-1] == FLOOR_DBFS
    assert dbfs(np.zeros(0, np.float32)) == FLOOR_DBFS


def test_wanted_is_exactly_what_completes_the_next_window():
    """A live source waits for `wanted` samples: one fewer must not complete the window (a
    wasted wake-up), and exactly that many must (no added latency)."""
    config = FrontEndConfig()
    rng = np.random.default_rng(0)
    stream = WindowStream(config, 51, 25)
    for k in range(4):
        n = stream.wanted
        assert n > 0
        assert stream.push((0.1 * rng.standard_normal(n - 1)).astype(np.float32)).indices == []
        assert stream.wanted == 1
        assert stream.push(np.zeros(1, np.float32)).indices == [k]
    # A window of 1 s with frames centred 20 ms apart needs half a 40-ms analysis window more.
    assert stream.pushed == 16000 + 320 + 3 * 8000
