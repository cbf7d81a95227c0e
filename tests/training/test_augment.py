"""Speed variants of real clips: what they change (pitch and length), what they keep (the label),
and that the feature cache keeps them apart from the originals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_asc.audio_io import read_audio
from edge_asc.features import FrontEndConfig, LogMel
from edge_asc.training import data
from edge_asc.training.augment import Speed, speeds
from edge_asc.training.splits import band_stats, make_split


@pytest.fixture(scope="module")
def siren(shared_data: Path) -> Path:
    """A real siren: a strong, steady pitch whose shift is easy to measure."""
    return next((shared_data / "urbansound8k-16k").rglob("*-8-0-*.flac"))


def _peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    spectrum[: int(200 * len(signal) / rate)] = 0  # ignore rumble below 200 Hz
    return float(np.argmax(spectrum) * rate / len(signal))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_a_speed_variant_shifts_pitch_and_length_together(siren: Path, factor: float):
    signal = read_audio(siren, 16000)
    played = Speed(factor).apply(signal, 16000)
    assert played.dtype == np.float32
    assert abs(len(played) - len(signal) / factor) <= 2
    assert _peak_hz(played, 16000) == pytest.approx(_peak_hz(signal, 16000) * factor, rel=0.03)
    assert np.array_equal(played, Speed(factor).apply(signal, 16000))  # reproducible


def test_speed_one_is_the_original_and_absurd_factors_are_refused(siren: Path):
    signal = read_audio(siren, 16000)
    assert Speed(1.0).apply(signal, 16000) is signal
    assert [s.factor for s in speeds((0.9, 1.0, 1.1))] == [0.9, 1.1]
    for factor in (0.0, 0.4, 2.5, float("nan")):
        with pytest.raises(ValueError):
            Speed(factor)


def test_the_cache_keeps_variants_apart_and_originals_where_they_were(siren: Path, tmp_path):
    config = FrontEndConfig()
    cache = data.FeatureCache(tmp_path, config)
    original = cache.frames(siren)
    entries = set(cache.directory.iterdir())
    faster = cache.frames(siren, Speed(1.1))
    assert len(set(cache.directory.iterdir()) - entries) == 1  # a new entry, the old one kept
    expected = LogMel(config).compute(Speed(1.1).apply(read_audio(siren, 16000), 16000))
    assert np.array_equal(faster, expected)
    assert len(faster) < len(original)
    again = data.FeatureCache(tmp_path, config)
    assert np.array_equal(again.frames(siren, Speed(1.1)), faster)
    assert np.array_equal(again.frames(siren), original)
    assert again.hits == 2 and again.misses == 0


def test_variants_train_under_their_clip_labels(shared_data: Path, tmp_path):
    dataset = data.load_dataset(shared_data / "urbansound8k-16k")
    clips = [c for c in dataset.clips if c.split == "1"][:12]
    cache = data.FeatureCache(tmp_path, FrontEndConfig())
    frames = cache.load_all(clips, progress=False)
    variants = [cache.load_all(clips, progress=False, variant=v) for v in speeds((0.9, 1.1))]
    mean, std = band_stats(frames)
    labels = dataset.label_indices(clips)
    split = make_split(labels, frames, mean, std, 51, 25, variants)
    per_clip = split.clips.counts
    assert len(per_clip) == 3 * len(clips)
    assert len(split.draw_labels) == per_clip.sum()
    # clip after clip: the originals, then each variant, every window under its clip's label
    starts = np.cumsum(per_clip) - per_clip
    for i, label in enumerate(np.tile(labels, 3)):
        assert set(split.draw_labels[starts[i] : starts[i] + per_clip[i]]) == {label}
    # the slower variant is longer, the faster shorter; the grid windows are the originals' only
    n = len(clips)
    lengths = split.clips.lengths
    assert (lengths[n : 2 * n] > lengths[:n]).all() and (lengths[2 * n :] < lengths[:n]).all()
    assert per_clip[:n].sum() == len(split.y)
