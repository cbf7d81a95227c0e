"""The library API on real clips: arrays and files agree; integer PCM is scaled by its range;
what would be a guess (channels-first, empty, too short, an absurd rate, NaN) is a ValueError."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_asc.api import MAX_ARRAY_CHANNELS, Classifier
from edge_asc.audio_io import MAX_RATE, MIN_RATE


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


# --- integer PCM, shapes, rates ----------------------------------------------------------------

JACKHAMMER = "fold1/103074-7-4-4.flac"  # the model's surest jackhammer: 0.97 from float samples
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


def quantise(audio: np.ndarray, dtype: str) -> np.ndarray:
    """Full-scale float samples as a PCM dtype: signed by its range, unsigned offset binary."""
    d = np.dtype(dtype)
    if d.kind == "f":
        return audio.astype(d)
    half = 2.0 ** (8 * d.itemsize - 1)
    offset = half if d.kind == "u" else 0.0
    info = np.iinfo(d)
    scaled = np.round(audio.astype(np.float64) * half + offset)
    return np.clip(scaled, float(info.min), float(info.max)).astype(d)


def probabilities(result) -> np.ndarray:
    return np.array(list(result.probabilities.values()))


@pytest.fixture(scope="module")
def jackhammer(shared_data) -> np.ndarray:
    audio, _ = sf.read(shared_data / "urbansound8k-16k" / JACKHAMMER, dtype="float32")
    return audio


def test_int16_pcm_is_scaled_like_the_file_reader(classifier, shared_data, jackhammer):
    """An int16 array is what the file holds: the same verdict as the float one, to the bit."""
    pcm, rate = sf.read(shared_data / "urbansound8k-16k" / JACKHAMMER, dtype="int16")
    as_int = classifier.classify_array(pcm, rate)
    as_float = classifier.classify_array(jackhammer, rate)
    assert as_float.label == as_int.label == "jackhammer"
    assert as_int.probabilities["jackhammer"] > 0.9
    np.testing.assert_allclose(probabilities(as_int), probabilities(as_float), atol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dtype=st.sampled_from(INT_DTYPES + FLOAT_DTYPES),
    channels=st.integers(1, MAX_ARRAY_CHANNELS),
    start=st.integers(0, 30000),
)
def test_any_pcm_dtype_and_channel_count(classifier, jackhammer, dtype, channels, start):
    """Every integer and float dtype, mono or (samples, channels): the float result, within
    what the dtype's resolution allows. 8 bits are coarsest: over starts every 250 samples the
    largest difference is 0.011 (float16: 0.0035), so they get 2e-2 and float16 1e-2."""
    audio = jackhammer[start : start + 20000]
    reference = classifier.classify_array(audio, 16000)
    expected = probabilities(reference)
    pcm = quantise(audio, dtype)
    array = pcm if channels == 1 else np.repeat(pcm[:, None], channels, axis=1)
    result = classifier.classify_array(array, 16000)
    atol = 2e-2 if np.dtype(dtype).itemsize == 1 else 1e-2 if dtype == "float16" else 1e-4
    np.testing.assert_allclose(probabilities(result), expected, atol=atol)
    assert result.windows == reference.windows == len(result.window_probabilities)


@settings(max_examples=30, deadline=None)
@given(channels=st.integers(2, MAX_ARRAY_CHANNELS), samples=st.integers(9, 40000))
def test_a_channels_first_array_is_refused(classifier, channels, samples):
    with pytest.raises(ValueError, match="channels-first"):
        classifier.classify_array(np.zeros((channels, samples), np.float32), 16000)


@pytest.mark.parametrize("shape", [(0,), (0, 1), (0, 2), (16000, 0), (0, 0)])
@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_an_empty_array_is_refused(classifier, shape, dtype):
    with pytest.raises(ValueError, match="no audio"):
        classifier.classify_array(np.zeros(shape, dtype), 16000)


@pytest.mark.parametrize("samples", [1, 100, 7999])
def test_under_half_a_window_is_refused(classifier, samples):
    """Fewer samples than half a 1-s window: no sound worth a verdict, not a tiled guess."""
    with pytest.raises(ValueError, match="too short"):
        classifier.classify_array(np.full(samples, 0.1, np.float32), 16000)
    assert classifier.classify_array(np.full(8000, 0.1, np.float32), 16000).windows == 1


@settings(max_examples=40, deadline=None)
@given(
    rate=st.one_of(
        st.integers(max_value=MIN_RATE - 1),
        st.integers(min_value=MAX_RATE + 1),
        st.floats().filter(lambda r: not (r.is_integer() and MIN_RATE <= r <= MAX_RATE)),
        # 10**400 raised OverflowError (int too large to convert to float)
        st.sampled_from([True, "16000", None, 10**9, 1e9, 10**400, -(10**400)]),
    )
)
def test_an_absurd_rate_is_refused(classifier, rate):
    with pytest.raises(ValueError, match="sample_rate"):
        classifier.classify_array(np.zeros(16000, np.float32), rate)


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros((10, 10, 2), np.float32),
        np.zeros(16000, bool),
        np.zeros(16000, np.complex64),
        np.array(["a"] * 16000),
        np.float32(0.5),
    ],
    ids=["3-d", "bool", "complex", "strings", "scalar"],
)
def test_what_is_no_pcm_is_refused(classifier, audio):
    with pytest.raises(ValueError):
        classifier.classify_array(audio, 16000)


@settings(max_examples=15, deadline=None)
@given(hop=st.sampled_from([0.0, -0.5, float("nan"), float("inf")]))
def test_an_absurd_hop_is_refused(classifier, clip, hop):
    audio, rate = sf.read(clip, dtype="float32")
    with pytest.raises(ValueError, match="hop"):
        classifier.classify_array(audio, rate, hop_seconds=hop)


@pytest.mark.parametrize("hop", [True, "0.5", None, 10**400, np.float64("nan")])
def test_a_hop_that_is_no_number_of_seconds_is_refused(classifier, hop):
    """True was taken as a 1-s hop; 10**400 raised OverflowError."""
    with pytest.raises(ValueError, match="hop_seconds"):
        classifier.classify_array(np.zeros(16000, np.float32), 16000, hop_seconds=hop)


@pytest.mark.parametrize("hop", [np.float32(0.5), np.float64(0.5), np.int64(1), 1])
def test_numpy_hops_are_taken(classifier, hop):
    """np.float32(0.5) was refused while np.float64(0.5) was taken."""
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    assert classifier.classify_array(audio, 16000, hop_seconds=hop).windows >= 2
