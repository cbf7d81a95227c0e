"""Downmixing: the hand-written channel sum must give NumPy's mean on real multichannel audio."""

from pathlib import Path

import numpy as np
import soundfile as sf

from edge_asc.audio_io import to_mono


def test_stereo_scene_is_the_mean_of_its_channels(shared_data: Path) -> None:
    stereo, _ = sf.read(shared_data / "tut-urban-2018-demo" / "park.flac", dtype="float32")
    assert stereo.shape[1] == 2
    mono = to_mono(stereo)
    assert mono.dtype == np.float32 and mono.shape == (stereo.shape[0],)
    np.testing.assert_array_equal(mono, (stereo[:, 0] + stereo[:, 1]) / np.float32(2))
    np.testing.assert_array_equal(mono, stereo.mean(axis=1, dtype=np.float32))


def test_more_channels_average_within_rounding(shared_data: Path) -> None:
    stereo, _ = sf.read(shared_data / "tut-urban-2018-demo" / "tram.flac", dtype="float32")
    six = np.concatenate([stereo, stereo[:, ::-1] * 0.5, -stereo], axis=1)  # six real channels
    mono = to_mono(six)
    np.testing.assert_allclose(mono, six.astype(np.float64).mean(axis=1), atol=1e-7)


def test_mono_and_int_input_pass_through_as_float32() -> None:
    mono = np.arange(5, dtype=np.float32)
    assert to_mono(mono) is mono
    as_float = to_mono(np.array([[1, 3], [2, 4]], dtype=np.int16))
    np.testing.assert_array_equal(as_float, np.array([2.0, 3.0], dtype=np.float32))
