"""Device lookup through the microphone source: by name or index, the rate fallback, the errors."""

from __future__ import annotations

import sys

import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.sources import MicSource


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


def test_no_input_device_is_a_one_line_user_error(fake_sd, make_device):
    fake_sd(devices=[make_device(1, "HDMI out", inputs=0)])
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
