"""The library API on a real clip: arrays and files agree, broken arrays are refused."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edge_asc.api import Classifier


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="module")
def clip(shared_data):
    return sorted((shared_data / "urbansound8k-16k").rglob("*.flac"))[0]


def test_an_array_and_its_file_give_the_same_verdict(classifier, clip):
    audio, rate = sf.read(clip, dtype="float32")
    from_array = classifier.classify_array(audio, rate)
    from_file = classifier.classify_file(clip)
    assert from_array.label == from_file.label
    np.testing.assert_allclose(
        from_array.window_probabilities, from_file.window_probabilities, atol=1e-6
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(classifier, clip, bad):
    audio, rate = sf.read(clip, dtype="float32")
    audio[len(audio) // 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        classifier.classify_array(audio, rate)
