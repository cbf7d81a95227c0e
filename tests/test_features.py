"""The front-end on real clips: agreement with python-speech-features, and streaming exactness."""

from __future__ import annotations

import numpy as np
import pytest
import python_speech_features as psf
import soundfile as sf

from edge_asc.features import (
    FrontEndConfig,
    LogMel,
    analysis_window,
    mel_bands,
    mel_matrix,
    windows,
)


@pytest.fixture(scope="module")
def clips(shared_data):
    root = shared_data / "urbansound8k-16k"
    paths = (
        sorted((root / "fold1").glob("*.flac"))[:2] + sorted((root / "fold3").glob("*.flac"))[:1]
    )
    return [sf.read(str(p), dtype="float32")[0] for p in paths]


def psf_logmel(signal: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """python-speech-features with our parameters, on the same half-window-padded signal."""
    pad = np.zeros(config.win_length // 2)
    padded = np.concatenate((pad, signal.astype(np.float64), pad))
    feat, _ = psf.fbank(
        padded,
        samplerate=config.sample_rate,
        winlen=config.win_length / config.sample_rate,
        winstep=config.hop_length / config.sample_rate,
        nfilt=config.n_mels,
        nfft=config.n_fft,
        lowfreq=config.fmin,
        highfreq=config.fmax,
        preemph=0.0,
        winfunc=np.hamming,
    )
    return feat


@pytest.mark.parametrize(
    "config",
    [
        FrontEndConfig(),
        FrontEndConfig(sample_rate=22050, n_mels=64, n_fft=2048, win_length=1024, fmax=11025),
        FrontEndConfig(n_mels=32, n_fft=512, win_length=400, hop_length=160, fmin=50, fmax=7000),
    ],
)
def test_mel_matrix_is_python_speech_features_filterbank(config):
    ours = mel_matrix(config)
    ref = psf.get_filterbanks(
        config.n_mels, config.n_fft, config.sample_rate, config.fmin, config.fmax
    ).T
    assert ours.shape == (config.n_fft // 2 + 1, config.n_mels)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)


def test_default_filterbank_has_no_empty_band():
    assert np.all(mel_matrix(FrontEndConfig()).sum(axis=0) > 0)


def test_log_mel_agrees_with_python_speech_features(clips):
    config = FrontEndConfig()
    for signal in clips:
        ours = LogMel(config).compute(signal)
        ref = psf_logmel(signal, config)
        # psf pads the end to a whole frame and may add one frame we do not emit.
        n = ours.shape[0]
        assert ref.shape[0] in (n, n + 1)
        loud = ref[:n] > config.log_floor * 10  # below our floor, see the next test
        np.testing.assert_allclose(ours[loud], np.log(ref[:n][loud]), rtol=1e-4)


def test_deliberate_difference_log_floor(clips):
    """We clip mel power at 1e-10 where psf only replaces exact zeros by machine epsilon.

    Digital silence then maps to log(1e-10) = -23.0, not log(2.2e-16) = -36.0: a floor 13 nats
    closer keeps silent padding from dominating the per-band normalisation statistics.
    """
    config = FrontEndConfig()
    silence = np.zeros(16000, dtype=np.float32)
    frames = LogMel(config).compute(silence)
    np.testing.assert_allclose(frames, np.log(1e-10), rtol=1e-6)
    ref = np.log(psf_logmel(silence, config))
    assert np.allclose(ref, np.log(np.finfo(float).eps))


@pytest.mark.parametrize(
    "config",
    [
        FrontEndConfig(),
        FrontEndConfig(sample_rate=22050, n_mels=64, n_fft=2048, win_length=1024, fmax=11025),
        FrontEndConfig(n_mels=128, n_fft=512, win_length=400, hop_length=160),  # 13 empty filters
    ],
)
def test_mel_bands_hold_every_weight(config):
    matrix = mel_matrix(config)
    rebuilt = np.zeros_like(matrix)
    for band in mel_bands(matrix):
        rebuilt[band.bins, band.mels] += band.weights
    np.testing.assert_array_equal(rebuilt, matrix)  # every weight in exactly one block


def dense_log_mel(signal: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """The front-end as one dense matrix product over all bins, written plainly."""
    pad = np.zeros(config.win_length // 2, dtype=np.float32)
    buf = np.concatenate((pad, signal, pad))
    frames = np.lib.stride_tricks.sliding_window_view(buf, config.win_length)[:: config.hop_length]
    window = analysis_window(config).astype(np.float64)
    spec = np.fft.rfft(frames * window, n=config.n_fft, axis=1)
    mel = (spec.real**2 + spec.imag**2) @ (mel_matrix(config).astype(np.float64) / config.n_fft)
    return np.log(np.maximum(mel, config.log_floor)).astype(np.float32)


@pytest.mark.parametrize(
    "config",
    [
        FrontEndConfig(),  # a frame is two hops
        FrontEndConfig(n_mels=32, n_fft=512, win_length=400, hop_length=160),  # 2.5 hops
        FrontEndConfig(win_length=320, hop_length=320),  # frames do not overlap
    ],
)
def test_log_mel_equals_dense_product(clips, config):
    # Only the float64 summation order may differ; on this machine all 2,148 shared clips gave
    # float32 frames identical to the previous, dense-product front-end's, so a tolerance of a
    # few float32 steps is ample anywhere.
    for signal in clips:
        ours = LogMel(config).compute(signal)
        np.testing.assert_allclose(ours, dense_log_mel(signal, config), rtol=1e-6, atol=0)
        stream = LogMel(config)
        parts = [stream.push(signal[i : i + 1000]) for i in range(0, len(signal), 1000)]
        np.testing.assert_allclose(np.concatenate([*parts, stream.flush()]), ours, rtol=1e-6)


@pytest.mark.parametrize("chunk", [160, 1000, 8000])
def test_streaming_equals_whole_clip(clips, chunk):
    for signal in clips:
        whole = LogMel().compute(signal)
        stream = LogMel()
        parts = [stream.push(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
        parts.append(stream.flush())
        streamed = np.concatenate(parts)
        assert streamed.shape == whole.shape
        np.testing.assert_allclose(streamed, whole, atol=1e-6, rtol=0)


def test_push_returns_only_new_frames(clips):
    signal = clips[0]
    stream = LogMel()
    first = stream.push(signal[:8000])  # 0.5 s: frames centred on 0, 320, ..., 7680 minus edge
    second = stream.push(signal[8000:16000])
    assert first.shape[0] + second.shape[0] == (16000 + 320 - 640) // 320 + 1
    assert second.shape[0] == 25  # one 0.5-s hop is 25 new frames


def test_one_second_is_51_frames_and_one_window(clips):
    config = FrontEndConfig()
    frames = LogMel(config).compute(clips[0][:16000])
    assert frames.shape == (51, 40) and frames.dtype == np.float32
    assert config.frames_for(1.0) == 51
    assert windows(frames, 51, 25).shape == (1, 1, 40, 51)


def test_four_second_clip_windows(clips):
    frames = LogMel().compute(clips[0])
    w = windows(frames, 51, 25)
    assert w.shape == (7, 1, 40, 51)
    np.testing.assert_array_equal(w[1, 0], frames[25:76].T)


def test_short_clip_is_tiled_to_one_window(clips):
    frames = LogMel().compute(clips[0][:4000])
    assert windows(frames, 51, 25).shape == (1, 1, 40, 51)


def test_config_round_trip_and_validation():
    config = FrontEndConfig(n_mels=32)
    assert FrontEndConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        FrontEndConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        FrontEndConfig(win_length=2048)
    with pytest.raises(ValueError):
        FrontEndConfig(fmax=9000)
    with pytest.raises(ValueError, match="hop_length"):
        FrontEndConfig(win_length=256, hop_length=320)


@pytest.mark.parametrize(
    "change, name",
    [
        ({"sample_rate": 10**9}, "sample_rate"),
        ({"sample_rate": 4000, "fmax": 2000.0}, "sample_rate"),
        ({"sample_rate": 16000.0}, "sample_rate"),
        ({"n_fft": 1024.5}, "n_fft"),
        ({"n_fft": 2**20}, "n_fft"),
        ({"n_mels": True}, "n_mels"),
        ({"n_mels": 4096}, "n_mels"),
        ({"fmax": float("nan")}, "fmax"),
        ({"fmin": "0"}, "fmin"),
        ({"log_floor": 0.0}, "log_floor"),
        ({"window": ["hamming"]}, "window"),
    ],
)
def test_config_refuses_wrong_types_and_absurd_values(change, name):
    """A model card is untrusted: what would crash soxr or NumPy later is refused here."""
    with pytest.raises(ValueError, match=name):
        FrontEndConfig(**change)
