"""Background scenes under training windows: real UrbanSound8K windows over real TUT scenes."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.features import LogMel, windows
from edge_asc.training import backgrounds, data


@pytest.fixture(scope="module")
def scenes(shared_data):
    paths = backgrounds.find(shared_data / "tut-urban-2018-demo")
    return [LogMel().compute(data.read_audio(p, 16000)) for p in paths]


@pytest.fixture(scope="module")
def real(shared_data, scenes):
    """Normalised windows of real clips, and the scenes' bank normalised the same way."""
    dataset = data.load_dataset(shared_data / "urbansound8k-16k")
    clips = [c for c in dataset.subset({"1"}) if c.label in ("siren", "car_horn", "dog_bark")][:12]
    frames = [LogMel().compute(data.read_audio(c.path, 16000)) for c in clips]
    stacked = np.concatenate(frames)
    mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-5
    x = np.concatenate([windows((f - mean) / std, 51, 25) for f in frames]).astype(np.float32)
    return x, backgrounds.bank(scenes, mean, std, 51)


def _power(x: np.ndarray, bank: backgrounds.Backgrounds) -> np.ndarray:
    """Each window's mean mel power, in natural-log units."""
    raw = x[:, 0] * bank.std[None, :, None] + bank.mean[None, :, None]
    return np.log(np.mean(np.exp(raw.astype(np.float64)), axis=(1, 2)))


def test_finds_every_recording_in_a_fixed_order(shared_data):
    paths = backgrounds.find(shared_data / "tut-urban-2018-demo")
    assert [p.name for p in paths][:3] == ["airport.flac", "bus.flac", "metro.flac"]
    assert len(paths) == 10 and paths == sorted(paths)


def test_a_missing_or_empty_folder_is_one_line(tmp_path):
    with pytest.raises(EdgeAscError, match="background folder not found"):
        backgrounds.find(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(EdgeAscError, match="no background recordings"):
        backgrounds.find(tmp_path)


def test_recordings_shorter_than_a_window_are_refused(scenes):
    mean, std = np.zeros(40, np.float32), np.ones(40, np.float32)
    with pytest.raises(EdgeAscError, match="a window needs 51"):
        backgrounds.bank([scenes[0][:30]], mean, std, 51)


def test_the_share_is_mixed_and_the_rest_left_alone(real):
    x, bank = real
    before = x.copy()
    out = backgrounds.mix(x, bank, 0.5, (0.0, 20.0), np.random.default_rng(0))
    np.testing.assert_array_equal(x, before)  # the drawn windows themselves are not touched
    changed = np.any(out != x, axis=(1, 2, 3))
    assert out.shape == x.shape and out.dtype == np.float32
    assert 0.3 < changed.mean() < 0.7
    assert backgrounds.mix(x, bank, 0.0, (0.0, 20.0), np.random.default_rng(0)) is x


def test_reproducible_by_seed(real):
    x, bank = real
    a = backgrounds.mix(x, bank, 0.5, (0.0, 20.0), np.random.default_rng(3))
    b = backgrounds.mix(x, bank, 0.5, (0.0, 20.0), np.random.default_rng(3))
    c = backgrounds.mix(x, bank, 0.5, (0.0, 20.0), np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_the_background_sits_at_the_drawn_ratio_below_the_sound(real, snr):
    """Label-preserving: the clip's sound stays the louder part (power adds in each band, so the
    mixed window holds the window's power plus the background's at -snr dB)."""
    x, bank = real
    out = backgrounds.mix(x, bank, 1.0, (snr, snr), np.random.default_rng(1))
    added = _power(out, bank) - _power(x, bank)
    np.testing.assert_allclose(added, np.log1p(10 ** (-snr / 10)), atol=2e-3)
    assert np.all(out >= x - 1e-5)  # a background only adds power, it never masks
    if snr == 20.0:  # where the sound is loud it stays as it was; the quiet bands fill in
        assert np.median((out - x)[x > 1.0]) < 0.02 < np.median((out - x)[x < -1.0])
