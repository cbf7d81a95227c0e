"""Finds PortAudio's input devices: the list, the one a `--device` names, a rate it accepts.

sounddevice is imported only here, when a device is asked for: importing it without a PortAudio
library raises OSError, and the file and stdin sources must work on such a machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_asc.errors import EdgeAscError

DEVICES_HINT = "list the input devices with `edge-asc devices`"


def import_sounddevice() -> Any:
    """sounddevice, or a one-line EdgeAscError when the PortAudio library is missing."""
    try:
        import sounddevice as sd
    except OSError as err:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise EdgeAscError(
            f"no PortAudio library, so no microphone ({err}); install it (Debian/Raspberry Pi "
            "OS: apt install libportaudio2), or use --from-file or --stdin"
        ) from err
    return sd


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool


def input_devices() -> list[InputDevice]:
    """Every device PortAudio can record from, with its channels and default rate."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as err:
        raise EdgeAscError(f"cannot list audio devices: {err}") from err
    return [
        InputDevice(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            channels=int(d["max_input_channels"]),
            default_rate=float(d["default_samplerate"]),
            is_default=int(d["index"]) == default_in,
        )
        for d in devices
        if d["max_input_channels"] > 0
    ]


def resolve_device(sd: Any, spec: str | int | None) -> dict[str, Any]:
    """The input device `spec` names: None = the default, an index, or a name substring."""
    if spec is None:
        try:
            return dict(sd.query_devices(kind="input"))
        except sd.PortAudioError as err:
            raise EdgeAscError(
                f"no input device (PortAudio: {err}); connect a microphone, {DEVICES_HINT}, or "
                "use --from-file or --stdin"
            ) from err
    text = str(spec).strip()
    try:
        devices = [dict(d) for d in sd.query_devices()]
    except sd.PortAudioError as err:
        raise EdgeAscError(f"cannot list audio devices ({err}); {DEVICES_HINT}") from err
    inputs = [d for d in devices if d["max_input_channels"] > 0]
    if text.lstrip("-").isdigit():
        index = int(text)
        match = [d for d in inputs if d["index"] == index]
        if not match:
            raise EdgeAscError(f"no input device with index {index}; {DEVICES_HINT}")
        return match[0]
    match = [d for d in inputs if text.lower() in d["name"].lower()]
    exact = [d for d in match if d["name"].lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    if not match:
        raise EdgeAscError(f"no input device named like {text!r}; {DEVICES_HINT}")
    if len(match) > 1:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in match)
        raise EdgeAscError(f"{text!r} matches several input devices ({names}); pick one by index")
    return match[0]


def choose_rate(sd: Any, device: dict[str, Any], channels: int, wanted: int | None) -> int:
    """`wanted` if the device takes it, else the device's default rate (resampled downstream)."""
    candidates = [wanted] if wanted else []
    candidates.append(round(device["default_samplerate"]))
    for rate in candidates:
        try:
            sd.check_input_settings(
                device=device["index"], channels=channels, dtype="float32", samplerate=rate
            )
        except (sd.PortAudioError, ValueError):
            continue
        return int(rate)
    raise EdgeAscError(
        f"input device {device['name']!r} accepts neither {wanted} Hz nor its default rate "
        f"with {channels} channel(s); {DEVICES_HINT}"
    )
