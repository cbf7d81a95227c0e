"""The microphone's callback bookkeeping and its reconnect logic, against a stand-in sounddevice."""

from __future__ import annotations

import time
import types

import numpy as np

from edge_asc.sources import MicSource


def test_callback_copies_and_counts_overflows(fake_sd):
    sd = fake_sd()
    mic = MicSource("ALC3246", rate=44100, channels=1, buffer_seconds=0.01)  # 441 frames
    mic.want(441)
    callback = sd.opened.kwargs["callback"]
    block = np.arange(300, dtype=np.float32)[:, None]
    callback(block, 300, None, types.SimpleNamespace(input_overflow=False))
    callback(block, 300, None, types.SimpleNamespace(input_overflow=True))  # 141 fit
    assert mic.overflows == 2  # one reported by PortAudio, one by the full ring
    got = mic.read(timeout=0.0)
    np.testing.assert_array_equal(got[:300, 0], block[:, 0])
    np.testing.assert_array_equal(got[300:, 0], block[:141, 0])


def test_a_stopped_stream_is_reopened_with_backoff(fake_sd):
    """The logic only; tests/test_faults.py restarts a real PulseAudio server under a listener."""
    sd = fake_sd()
    mic = MicSource(retry=(0.05, 0.1))
    lost = sd.opened
    lost.active = False  # e.g. the USB microphone was unplugged
    assert mic.read(timeout=0.01).shape == (0, 1)  # no exception: the stream goes on
    assert lost.closed and mic.reconnects == 0
    (notice,) = mic.take_notices()
    assert "lost the input device" in notice and "stopped" in notice
    deadline = time.monotonic() + 5
    while mic.reconnects == 0 and time.monotonic() < deadline:
        assert mic.read(timeout=0.02).shape == (0, 1)
    assert mic.reconnects == 1 and sd.opened is not lost and sd.opened.active
    assert "is back" in mic.take_notices()[0]


def test_a_stalled_stream_is_reopened(fake_sd):
    """Active, but no audio for `stall_seconds` (a hung driver or server): treated as lost."""
    sd = fake_sd()
    mic = MicSource(retry=(0.05, 0.1), stall_seconds=0.2)
    stalled = sd.opened
    deadline = time.monotonic() + 5
    while mic.reconnects == 0 and time.monotonic() < deadline:
        assert mic.read(timeout=0.05).shape == (0, 1)
    notices = mic.take_notices()
    assert "no audio for 0.2 s" in notices[0] and "is back" in notices[1]
    assert stalled.closed and sd.opened is not stalled and mic.reconnects == 1


def test_read_holds_until_the_frames_the_consumer_wants(fake_sd):
    """One block per window, not a trickle: less than `want` comes out as an empty block."""
    sd = fake_sd()
    mic = MicSource(rate=16000)
    callback = sd.opened.kwargs["callback"]
    status = types.SimpleNamespace(input_overflow=False)
    mic.want(4000)  # more than the 50 ms (800 frames) it hands out unasked
    callback(np.ones((2400, 1), np.float32), 2400, None, status)
    assert mic.read(timeout=0.02).shape == (0, 1)
    callback(np.ones((2400, 1), np.float32), 2400, None, status)
    assert mic.read(timeout=0.02).shape == (4800, 1)


def test_a_want_larger_than_the_ring_does_not_wait_for_ever(fake_sd):
    """A small ring can never hold a whole window's audio: half the ring is enough to read."""
    sd = fake_sd()
    mic = MicSource(buffer_seconds=0.05)
    mic.want(10 * mic.rate)
    n = round(0.03 * mic.rate)  # more than half the ring
    sd.opened.kwargs["callback"](
        np.ones((n, 1), np.float32), n, None, types.SimpleNamespace(input_overflow=False)
    )
    assert mic.read(timeout=0.02).shape == (n, 1)
