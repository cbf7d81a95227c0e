"""Real audio for the benchmarks: the shared UrbanSound8K clips, every class in turn.

The clips are 4-s, 16-kHz mono FLAC (../shared/data/urbansound8k-16k, see its README); they are
concatenated round robin over the classes, so any stretch of the result holds several classes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
US8K = ROOT.parent / "shared" / "data" / "urbansound8k-16k"


def clip_order(data: Path = US8K) -> list[Path]:
    """Every clip in meta.csv, one class after another (fold and name order within a class)."""
    meta = data / "meta.csv"
    if not meta.is_file():
        raise SystemExit(f"benchmark data missing: {meta} (the shared real recordings)")
    with open(meta, newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: (int(r["fold"]), r["filename"]))
    by_class: dict[str, list[str]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row["filename"])
    groups = zip(*by_class.values(), strict=False)
    return [data / name for group in groups for name in group]


def real_signal(seconds: float, rate: int = 16000, data: Path = US8K) -> np.ndarray:
    """About `seconds` of the shared clips back to back, float32 mono at `rate` (their rate)."""
    parts, total = [], 0
    for path in clip_order(data):
        audio, clip_rate = sf.read(path, dtype="float32", always_2d=True)
        if clip_rate != rate:
            raise SystemExit(f"{path}: {clip_rate} Hz, the benchmarks expect {rate} Hz")
        parts.append(audio.mean(axis=1))
        total += audio.shape[0]
        if total >= seconds * rate:
            break
    return np.concatenate(parts)
