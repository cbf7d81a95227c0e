"""Real shared clips of known classes joined into one recording, and its real predictions."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_asc.model import Model
from edge_asc.sources import FileSource
from edge_asc.stream import LiveStream

RATE = 16000
# UrbanSound8K fold 3 clips (4 s each) the shipped model labels confidently, one per class.
SEQUENCE = (
    ("12647-3-3-0", "dog_bark"),
    ("184623-8-0-3", "siren"),
    ("165039-7-5-1", "jackhammer"),
    ("182103-9-0-47", "street_music"),
    ("103199-4-6-0", "drilling"),
)


def join_clips(
    shared_data: Path, clips: list[str], out: Path, silence_s: float = 2.0
) -> list[tuple[float, float]]:
    """Write the clips to `out`, each followed by `silence_s` of digital silence; return each
    clip's (start, end) in seconds."""
    root = shared_data / "urbansound8k-16k" / "fold3"
    parts, spans, at = [], [], 0.0
    gap = np.zeros(round(silence_s * RATE), dtype=np.float32)
    for clip in clips:
        audio, rate = sf.read(root / f"{clip}.flac", dtype="float32")
        assert rate == RATE and audio.ndim == 1
        spans.append((at, at + audio.size / RATE))
        parts += [audio, gap]
        at += (audio.size + gap.size) / RATE
    sf.write(out, np.concatenate(parts), RATE, subtype="PCM_16")
    return spans


def predictions(path: Path, model: Model | None = None) -> list:
    """Every prediction `listen --from-file PATH --fast` makes, in order."""
    model = model or Model()
    source = FileSource(path, realtime=False)
    with source:
        return list(LiveStream(source, model, 0.5).predictions(threading.Event()))
