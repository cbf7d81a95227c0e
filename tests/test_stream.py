"""The streaming pipeline equals the offline one, however the audio arrives; stops; its records."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from edge_asc.api import Classifier
from edge_asc.audio_io import read_audio
from edge_asc.sources import FileSource, Source


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


@pytest.mark.parametrize(
    "clip", ["urbansound8k-16k/fold3/103199-4-0-0.flac", "tut-urban-2018-demo/tram.flac"]
)
def test_real_time_replay_wakes_once_per_window_and_on_time(classifier, shared_data, clip):
    """The source is told what the next window needs, so each window costs one read and one
    wake-up (the loop wakes with cold caches: a trickle of small blocks cost 1.5x the CPU, and
    waking five times a window 1.2x) and comes out as
    soon as its audio "has been recorded", not a hop later (at 48 kHz, within the 0.1 s
    more that the resampler's chunks need)."""
    path = shared_data / clip
    source = FileSource(path, realtime=True)
    reads, wakes, read = [], [], source.read

    def counted(timeout: float = 0.1):
        block = read(timeout)
        wakes.append(timeout)
        if block is not None and block.shape[0]:
            reads.append(block.shape[0])
        return block

    source.read = counted  # type: ignore[method-assign]
    duration = sf.info(path).duration
    start, late = time.monotonic(), []
    with source:
        for pred in classifier.stream(source, hop_seconds=0.5):
            recorded = pred.offset + 1.0 + 0.02  # the window's last frame needs 20 ms more
            if recorded <= duration:
                late.append(time.monotonic() - start - recorded)
    assert len(reads) <= len(late) + 2, reads
    # Empty reads are wake-ups too: a read timeout shorter than the hop (0.1 s woke five times
    # a window) costs CPU with nothing to do; the first window's second of audio takes two.
    assert len(wakes) <= len(late) + 4, (len(wakes), len(late))
    assert max(late) < 0.2, late  # a hop-sized block would be 0.48 s late
    assert min(late) > -0.01


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
