"""Where live audio comes from: a microphone, a file replayed, or raw PCM on standard input.

Each source is a module of its own (base, file, stdin, devices, capture, mic); this package
exports what callers use. Nothing here imports sounddevice: only opening a microphone or listing
devices does (edge_asc.sources.devices).
"""

from edge_asc.sources.base import Source
from edge_asc.sources.devices import InputDevice, input_devices
from edge_asc.sources.file import FileSource
from edge_asc.sources.mic import MicSource
from edge_asc.sources.stdin import PCM_FORMATS, PcmFormat, StdinSource, decode_pcm, pcm_format

__all__ = [
    "PCM_FORMATS",
    "FileSource",
    "InputDevice",
    "MicSource",
    "PcmFormat",
    "Source",
    "StdinSource",
    "decode_pcm",
    "input_devices",
    "pcm_format",
]
