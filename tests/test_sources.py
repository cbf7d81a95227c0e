"""Sources: file replay (fast and real time), raw PCM on stdin, and the microphone's logic.

The microphone is exercised for real through PulseAudio in test_listen.py; here a stand-in
`sounddevice` module checks device choice, the rate fallback and the callback's bookkeeping
without a sound server.
"""

from __future__ import annotations

import io
import os
import pty
import sys
import time
import types
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from edge_asc.errors import EdgeAscError
from edge_asc.sources import (
    FileSource,
    MicSource,
    StdinSource,
    decode_pcm,
    open_source,
    pcm_format,
)


@pytest.fixture
def us8k_clip(shared_data):
    return shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"


@pytest.fixture
def tut_clip(shared_data):
    return shared_data / "tut-urban-2018-demo" / "bus.flac"  # 48 kHz, stereo, 24-bit


def drain(source, timeout: float = 0.05) -> np.ndarray:
    blocks = []
    while (block := source.read(timeout)) is not None:
        blocks.append(block)
    return np.concatenate(blocks)


def test_file_fast_gives_every_sample(tut_clip):
    expected, rate = sf.read(tut_clip, dtype="float32", always_2d=True)
    with FileSource(tut_clip, realtime=False, block_seconds=0.37) as src:
        assert (src.rate, src.channels) == (rate, 2)
        got = drain(src)
        assert src.read() is None
    np.testing.assert_array_equal(got, expected)


def test_file_real_time_is_paced(tmp_path):
    path = tmp_path / "half.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 16000)
    with FileSource(path, realtime=True, block_seconds=0.1) as src:
        start = time.monotonic()
        first = src.read(timeout=0.0)
        assert first.shape[0] == 0  # the first 0.1 s has not "been recorded" yet
        total = first.shape[0] + drain(src, timeout=0.05).shape[0]
        elapsed = time.monotonic() - start
    assert total == 8000
    assert 0.45 <= elapsed < 2.0


@pytest.mark.parametrize("make", ["missing", "dir", "garbage"])
def test_file_errors_are_user_errors(tmp_path, make):
    path = tmp_path / "x.wav"
    if make == "dir":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(EdgeAscError, match=str(path)):
        FileSource(path)


def pcm_bytes(path, dtype: str) -> tuple[bytes, np.ndarray]:
    data, _ = sf.read(path, dtype=dtype, always_2d=True)
    return data.tobytes(), sf.read(path, dtype="float32", always_2d=True)[0]


def test_stdin_s16_matches_libsndfile_and_survives_split_frames(us8k_clip):
    raw, expected = pcm_bytes(us8k_clip, "int16")

    class Dribble(io.RawIOBase):
        """Hands out 333 bytes at a time: frames split across reads."""

        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, n: int = -1) -> bytes:
            out, self.data = self.data[:333], self.data[333:]
            return out

    src = StdinSource(16000, 1, "S16_LE", stream=Dribble(raw), block_seconds=0.01)
    np.testing.assert_array_equal(drain(src), expected)


def test_stdin_24_bit_packed_matches_libsndfile(tut_clip):
    data, _ = sf.read(tut_clip, dtype="int32", always_2d=True, frames=48000)
    packed = (data >> 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    expected, _ = sf.read(tut_clip, dtype="float32", always_2d=True, frames=48000)
    src = StdinSource(48000, 2, "s24_3le", stream=io.BytesIO(packed))
    np.testing.assert_array_equal(drain(src), expected)


@pytest.mark.parametrize("name", ["S32_LE", "FLOAT_LE"])
def test_stdin_other_formats(name):
    values = np.array([0.0, 0.5, -0.25, -1.0], dtype=np.float32)
    fmt = pcm_format(name)
    raw = (values * (2**31) if name == "S32_LE" else values).astype(fmt.dtype).tobytes()
    np.testing.assert_array_equal(decode_pcm(raw, fmt, 2), values.reshape(2, 2))


def test_stdin_drops_an_incomplete_last_frame_and_ends():
    src = StdinSource(16000, 1, "S16_LE", stream=io.BytesIO(b"\x00\x40\x00"))
    assert src.read().tolist() == [[0.5]]
    assert src.read() is None


def test_stdin_pipe_waits_at_most_the_timeout():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb", buffering=0) as reader:
        src = StdinSource(16000, 1, "S16_LE", stream=reader)
        start = time.monotonic()
        assert src.read(timeout=0.2).shape == (0, 1)  # nothing written: back after the timeout
        assert 0.15 < time.monotonic() - start < 1.5
        os.write(write_fd, np.array([16384, -16384], dtype="<i2").tobytes())
        np.testing.assert_array_equal(src.read(timeout=1.0)[:, 0], [0.5, -0.5])
        os.close(write_fd)
        assert src.read(timeout=1.0) is None


def test_unknown_pcm_format():
    with pytest.raises(EdgeAscError, match="S16_LE"):
        pcm_format("mp3")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_file": "x.wav", "stdin": True}, "one of"),
        ({"fast": True}, "--from-file"),
        ({"from_file": "x.wav", "rate": 48000}, "do not apply"),
        ({"stdin": True, "device": "usb", "rate": 16000}, "does not apply"),
        # Refused, not ignored: a file and a microphone have no raw sample format.
        ({"from_file": "x.wav", "pcm": "S16_LE"}, "--format .* --stdin only"),
        ({"pcm": "FLOAT_LE"}, "--format .* --stdin only"),
        # Raw PCM has no header: a guessed rate would be wrong without a sign.
        ({"stdin": True}, "--stdin needs --rate"),
    ],
)
def test_open_source_rejects_contradictions(kwargs, message):
    with pytest.raises(EdgeAscError, match=message):
        open_source(**kwargs)


def test_stdin_at_a_terminal_is_refused_not_waited_on():
    """A person at a terminal is not a PCM stream: say so instead of waiting for ever."""
    main, other = pty.openpty()
    try:
        with (
            open(other, "rb", buffering=0, closefd=False) as terminal,
            pytest.raises(EdgeAscError, match="standard input is a terminal"),
        ):
            open_source(stdin=True, rate=16000, stdin_stream=terminal)
    finally:
        os.close(main)
        os.close(other)


# --- the microphone, against a stand-in sounddevice -------------------------------------------


class FakePortAudioError(Exception):
    pass


def fake_sounddevice(devices: list[dict[str, Any]], rates: set[int]) -> types.ModuleType:
    """Just enough of sounddevice's surface for MicSource: devices, rate check, InputStream."""
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = FakePortAudioError
    inputs = [d for d in devices if d["max_input_channels"] > 0]

    def query_devices(device=None, kind=None):
        if kind == "input":
            if not inputs:
                raise FakePortAudioError("Error querying device -1")
            return inputs[0]
        return devices

    def check_input_settings(device=None, channels=None, dtype=None, samplerate=None):
        if samplerate not in rates:
            raise FakePortAudioError("Invalid sample rate [PaErrorCode -9997]")

    class InputStream:
        def __init__(self, **kwargs):
            self.kwargs, self.active, self.closed = kwargs, False, False
            sd.opened = self

        def start(self):
            self.active = True

        def stop(self):
            self.active = False

        def close(self):
            self.closed = True

    sd.query_devices = query_devices
    sd.check_input_settings = check_input_settings
    sd.InputStream = InputStream
    return sd


def device(index: int, name: str, inputs: int = 2, rate: float = 44100.0) -> dict[str, Any]:
    return {
        "index": index,
        "name": name,
        "hostapi": 0,
        "max_input_channels": inputs,
        "default_samplerate": rate,
    }


DEVICES = [
    device(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)"),
    device(1, "HDMI out", inputs=0),
    device(2, "USB PnP Sound Device: Audio (hw:1,0)", inputs=1, rate=48000.0),
    device(3, "USB Camera Mic (hw:2,0)", inputs=1, rate=16000.0),
]


@pytest.fixture
def fake_sd(monkeypatch):
    def install(devices=DEVICES, rates=frozenset({44100, 48000})):
        sd = fake_sounddevice(devices, set(rates))
        monkeypatch.setitem(sys.modules, "sounddevice", sd)
        return sd

    return install


def test_mic_by_substring_falls_back_to_the_default_rate(fake_sd):
    sd = fake_sd()
    mic = MicSource("pnp", rate=16000, channels=2)
    assert sd.opened.kwargs["device"] == 2
    assert mic.rate == 48000  # 16 kHz refused: the device's default, resampled downstream
    assert mic.channels == 1  # a mono device gives one channel
    assert sd.opened.active
    mic.close()
    assert sd.opened.closed


def test_mic_by_index_and_default(fake_sd):
    sd = fake_sd(rates={16000, 44100})
    assert MicSource("0", rate=16000).rate == 16000
    assert sd.opened.kwargs["device"] == 0
    MicSource(None, rate=16000)
    assert sd.opened.kwargs["device"] == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [("usb", "several"), ("bluetooth", "no input device named"), ("1", "no input device with")],
)
def test_mic_device_errors_point_to_devices(fake_sd, spec, message):
    fake_sd()
    with pytest.raises(EdgeAscError, match=message):
        MicSource(spec)


def test_no_input_device_is_a_one_line_user_error(fake_sd):
    fake_sd(devices=[device(1, "HDMI out", inputs=0)])
    with pytest.raises(EdgeAscError) as err:
        MicSource()
    text = str(err.value)
    assert "\n" not in text and "Error querying device -1" in text and "edge-asc devices" in text


def test_no_portaudio_library(monkeypatch):
    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    with pytest.raises(EdgeAscError, match=r"PortAudio library not found.*--from-file"):
        MicSource()


def test_callback_copies_and_counts_overflows(fake_sd):
    sd = fake_sd()
    mic = MicSource("ALC3246", rate=44100, channels=1, buffer_seconds=0.01)  # 441 frames
    callback = sd.opened.kwargs["callback"]
    block = np.arange(300, dtype=np.float32)[:, None]
    callback(block, 300, None, types.SimpleNamespace(input_overflow=False))
    callback(block, 300, None, types.SimpleNamespace(input_overflow=True))  # 141 fit
    assert mic.overflows == 2  # one reported by PortAudio, one by the full ring
    got = mic.read(timeout=0.0)
    np.testing.assert_array_equal(got[:300, 0], block[:, 0])
    np.testing.assert_array_equal(got[300:, 0], block[:141, 0])


def test_a_stopped_stream_is_reopened_with_backoff(fake_sd):
    """The logic only; tests/test_faults.py restarts a real PulseAudio server under a listener."""
    sd = fake_sd()
    mic = MicSource(retry=(0.05, 0.1))
    lost = sd.opened
    lost.active = False  # e.g. the USB microphone was unplugged
    assert mic.read(timeout=0.01).shape == (0, 1)  # no exception: the stream goes on
    assert lost.closed and mic.reconnects == 0
    (notice,) = mic.take_notices()
    assert "lost the input device" in notice and "stopped" in notice
    deadline = time.monotonic() + 5
    while mic.reconnects == 0 and time.monotonic() < deadline:
        assert mic.read(timeout=0.02).shape == (0, 1)
    assert mic.reconnects == 1 and sd.opened is not lost and sd.opened.active
    assert "is back" in mic.take_notices()[0]


def test_a_stalled_stream_is_reopened(fake_sd):
    """Active, but no audio for `stall_seconds` (a hung driver or server): treated as lost."""
    sd = fake_sd()
    mic = MicSource(retry=(0.05, 0.1), stall_seconds=0.2)
    stalled = sd.opened
    deadline = time.monotonic() + 5
    while mic.reconnects == 0 and time.monotonic() < deadline:
        assert mic.read(timeout=0.05).shape == (0, 1)
    notices = mic.take_notices()
    assert "no audio for 0.2 s" in notices[0] and "is back" in notices[1]
    assert stalled.closed and sd.opened is not stalled and mic.reconnects == 1
