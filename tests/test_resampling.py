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
