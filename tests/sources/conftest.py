"""Shared by the source tests: real clips, a drain helper, and a stand-in `sounddevice`.

The microphone is exercised for real through PulseAudio in test_listen.py; here a stand-in
`sounddevice` module checks device choice, the rate fallback and the callback's bookkeeping
without a sound server.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def us8k_clip(shared_data):
    return shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"


@pytest.fixture
def tut_clip(shared_data):
    return shared_data / "tut-urban-2018-demo" / "bus.flac"  # 48 kHz, stereo, 24-bit


@pytest.fixture
def drain() -> Callable[..., np.ndarray]:
    """Read a source to its end: every block, concatenated."""

    def read_all(source, timeout: float = 0.05) -> np.ndarray:
        blocks = []
        while (block := source.read(timeout)) is not None:
            blocks.append(block)
        return np.concatenate(blocks)

    return read_all


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


@pytest.fixture
def make_device() -> Callable[..., dict[str, Any]]:
    """A device entry as sounddevice.query_devices() lists it."""
    return device


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
