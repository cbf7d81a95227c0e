"""Streaming resampling equals one-shot soxr, however the audio is chunked."""

from __future__ import annotations

import numpy as np
import soxr

from edge_asc.resampling import Resampler


def test_resampler_chunks_equal_one_shot():
    rng = np.random.default_rng(2)
    audio = rng.standard_normal(48000 * 2).astype(np.float32) * 0.1
    resampler = Resampler(48000, 16000)
    parts = [resampler.push(audio[i : i + 4410]) for i in range(0, audio.size, 4410)]
    parts.append(resampler.flush())
    one_shot = soxr.resample(audio, 48000, 16000, quality="VHQ")
    np.testing.assert_array_equal(np.concatenate(parts), one_shot)
    same = Resampler(16000, 16000)
    assert same.push(audio) is audio and same.flush().size == 0


def test_frames_for_yields_at_least_the_samples_asked_for():
    """What the live stream asks a source for: pushed, it completes the window in one read."""
    resampler = Resampler(48000, 16000)
    rng = np.random.default_rng(1)
    out = 0
    for want in (16320, 8000, 8000, 8000):
        n = resampler.frames_for(want)
        out += resampler.push((0.1 * rng.standard_normal(n)).astype(np.float32)).size
        assert out >= want
        out -= want
    assert Resampler(16000, 16000).frames_for(8000) == 8000
