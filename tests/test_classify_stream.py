"""classify streams a file in blocks: the same verdict as the whole-file path
on real clips, and memory that does not grow with the file's length."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_asc.api import CLASSIFY_BLOCK, Classifier
from edge_asc.audio_io import read_audio

LONG_MINUTES = 20
# Measured here on the 20-minute 48 kHz stereo file below: the whole-file path grew the peak
# RSS by 1,865 MB, the streamed one by 3 MB.
RSS_GROWTH_LIMIT_MB = 64


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def real_clips(shared_data: Path) -> list[Path]:
    """Every 70th UrbanSound8K clip (31, all classes and folds) and the 10 TUT scenes."""
    us8k = sorted((shared_data / "urbansound8k-16k").rglob("*.flac"))[::70]
    return us8k + sorted((shared_data / "tut-urban-2018-demo").glob("*.flac"))


def test_streamed_classify_equals_the_whole_file_path_on_real_clips(classifier, shared_data):
    """The clip's probabilities are the mean of its 1-s windows', as when the whole file was
    decoded, resampled and framed at once (48 kHz stereo 24-bit files span several blocks)."""
    clips = real_clips(shared_data)
    assert sf.info(clips[-1]).frames > 3 * CLASSIFY_BLOCK
    for clip in clips:
        whole = classifier.window_probabilities(read_audio(clip, 16000))
        result = classifier.classify_file(clip)
        assert result.windows == whole.shape[0] and result.silent_windows == 0, clip
        np.testing.assert_allclose(result.window_probabilities, whole, rtol=0, atol=1e-5)
        got = np.array([result.probabilities[label] for label in classifier.labels])
        np.testing.assert_allclose(got, whole.mean(axis=0), rtol=0, atol=1e-5)
        assert result.label == classifier.labels[int(np.argmax(whole.mean(axis=0)))], clip
        assert classifier.classify_file(clip, keep_windows=False).window_probabilities is None


def write_long_file(shared_data: Path, path: Path, minutes: float) -> int:
    """The real TUT scenes (48 kHz, stereo, 24-bit) looped to `minutes`, written in pieces."""
    scenes = [
        sf.read(p, dtype="int32")[0]
        for p in sorted((shared_data / "tut-urban-2018-demo").glob("*.flac"))
    ]
    total, written = round(minutes * 60 * 48000), 0
    with sf.SoundFile(path, "w", 48000, 2, "PCM_24", format="FLAC") as out:
        while written < total:
            for scene in scenes:
                piece = scene[: total - written]
                out.write(piece)
                written += len(piece)
    return written


PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from edge_asc.api import Classifier

    classifier = Classifier()
    classifier.classify_file(sys.argv[2])  # a short clip first: the pipeline's own allocations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = classifier.classify_file(sys.argv[1])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (after - before) / 1024, "windows": len(
        result.window_probabilities), "label": result.label}))
    """
)


def test_a_long_file_is_classified_in_bounded_memory(shared_data, tmp_path):
    """20 minutes at 48 kHz stereo: 440 MB as float32 samples, 1.9 GB at the old peak."""
    path = tmp_path / "long.flac"
    frames = write_long_file(shared_data, path, LONG_MINUTES)
    short = shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(short)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["growth_mb"] < RSS_GROWTH_LIMIT_MB, report
    assert report["windows"] == (frames // 3 - 16000) // 8000 + 1  # 1-s windows, 0.5-s hop
