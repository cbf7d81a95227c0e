"""The streaming pipeline equals the offline one, however the audio arrives; smoothing rules."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asc.api import Classifier
from edge_asc.audio_io import read_audio
from edge_asc.features import FrontEndConfig, LogMel, windows
from edge_asc.sources import FileSource, Source
from edge_asc.stream import (
    FLOOR_DBFS,
    UNCERTAIN,
    Resampler,
    Smoother,
    SmoothingConfig,
    WindowStream,
    dbfs,
)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


class ArraySource(Source):
    """An in-memory source handing out blocks of the given sizes (then the rest, then None)."""

    def __init__(self, audio: np.ndarray, rate: int, sizes: list[int]) -> None:
        self.audio = audio if audio.ndim == 2 else audio[:, None]
        self.rate, self.channels = rate, self.audio.shape[1]
        self.sizes, self.pos = list(sizes), 0

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        if self.pos >= self.audio.shape[0]:
            return None
        n = self.sizes.pop(0) if self.sizes else self.audio.shape[0]
        block = self.audio[self.pos : self.pos + n]
        self.pos += n
        return block


def streamed(classifier: Classifier, source: Source, hop: float = 0.5) -> np.ndarray:
    return np.stack([p.probabilities for p in classifier.stream(source, hop_seconds=hop)])


@pytest.mark.parametrize("block_seconds", [0.013, 0.5, 8.0])
def test_file_replay_equals_offline_windows(classifier, shared_data, block_seconds):
    """openWakeWord's check: any chunking gives the offline result (here: exactly)."""
    path = shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"
    offline = classifier.window_probabilities(read_audio(path, 16000))
    source = FileSource(path, realtime=False, block_seconds=block_seconds)
    got = streamed(classifier, source)
    assert got.shape == offline.shape == (7, len(classifier.labels))
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)


def test_48k_stereo_24_bit_is_resampled_like_offline(classifier, shared_data):
    path = shared_data / "tut-urban-2018-demo" / "tram.flac"
    offline = classifier.window_probabilities(read_audio(path, 16000))
    got = streamed(classifier, FileSource(path, realtime=False, block_seconds=0.31))
    assert got.shape == offline.shape
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)


@pytest.mark.parametrize("hop", [0.25, 1.0])
def test_other_hops_and_a_short_stream(classifier, hop):
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(27000)).astype(np.float32)
    for signal in (audio, audio[:9000]):  # 9000 samples: shorter than a window, tiled
        offline = classifier.window_probabilities(signal, hop_seconds=hop)
        got = streamed(classifier, ArraySource(signal, 16000, [1234, 77, 5000]), hop=hop)
        np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)


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


def test_resampler_chunks_equal_one_shot():
    rng = np.random.default_rng(2)
    audio = rng.standard_normal(48000 * 2).astype(np.float32) * 0.1
    resampler = Resampler(48000, 16000)
    parts = [resampler.push(audio[i : i + 4410]) for i in range(0, audio.size, 4410)]
    parts.append(resampler.flush())
    one_shot = soxr.resample(audio, 48000, 16000, quality="HQ")
    np.testing.assert_array_equal(np.concatenate(parts), one_shot)
    same = Resampler(16000, 16000)
    assert same.push(audio) is audio and same.flush().size == 0


def test_stop_event_ends_the_stream(classifier):
    stop = threading.Event()
    audio = np.zeros(16000 * 60, dtype=np.float32)
    seen = 0
    for _ in classifier.stream(ArraySource(audio, 16000, [8000] * 200), stop=stop):
        seen += 1
        if seen == 3:
            stop.set()
    assert seen <= 4  # at most the windows of the block that was being processed


def test_prediction_fields(classifier, tmp_path):
    path = tmp_path / "noise.wav"
    sf.write(path, np.random.default_rng(3).uniform(-0.5, 0.5, 40000), 16000)
    preds = list(classifier.stream(FileSource(path, realtime=False)))
    assert [p.index for p in preds] == [0, 1, 2, 3]
    assert [p.offset for p in preds] == [0.0, 0.5, 1.0, 1.5]
    first = preds[0]
    top = first.top_k(3)
    assert top[0] == (first.label, first.confidence)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert first.model_id == classifier.model.id and first.time.tzinfo is not None


# --- smoothing --------------------------------------------------------------------------------


def probs(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_mean_smoothing_over_n_windows():
    smoother = Smoother(SmoothingConfig("mean", windows=2, margin=0.0, threshold=0.0))
    smoother.update(probs(1, 0))
    smoothed, _, _ = smoother.update(probs(0, 1))
    np.testing.assert_allclose(smoothed, [0.5, 0.5])
    smoothed, _, _ = smoother.update(probs(0, 1))  # the first window has left the span
    np.testing.assert_allclose(smoothed, [0, 1])


def test_ema_smoothing():
    smoother = Smoother(SmoothingConfig("ema", windows=3, margin=0.0, threshold=0.0))
    smoother.update(probs(1, 0))
    smoothed, _, _ = smoother.update(probs(0, 1))
    np.testing.assert_allclose(smoothed, [0.5, 0.5])  # alpha = 2 / (3 + 1)


def test_hysteresis_and_threshold():
    smoother = Smoother(SmoothingConfig("mean", windows=1, margin=0.2, threshold=0.5))
    assert smoother.update(probs(0.7, 0.3))[1] == 0
    assert smoother.update(probs(0.45, 0.55))[1] is None  # 0.55 does not beat 0.45 by 0.2
    _, shown, confidence = smoother.update(probs(0.4, 0.58))  # still class 0, too low to show
    assert (shown, confidence) == (None, pytest.approx(0.4))
    assert smoother.update(probs(0.2, 0.8))[1] == 1  # beats it by 0.6: switches


def test_smoothing_config_is_checked():
    with pytest.raises(ValueError):
        SmoothingConfig("median")
    with pytest.raises(ValueError):
        SmoothingConfig(windows=0)
    assert UNCERTAIN == "uncertain"
