"""Soak: hours of real audio through the live pipeline as fast as possible.

What a listener does in a day, in minutes: shared UrbanSound8K clips, looped, go through the
same consumer as `edge-asc listen` (stream.LiveStream: guard, resample, log-mel, the shipped
model, smoothing) into a size-rotated prediction log (sinks.PredictionLog). Printed as it goes:
the resident set size (VmRSS) and the consumer's backlog, every `--every-min` minutes of audio.
At the end: RSS growth after warm-up (goal <= 2 MB), the largest backlog, and whether the same
clip's windows got identical probabilities in the first loop and in the last one.

    .venv/bin/python benchmarks/soak.py                 # 24 hours of audio (about 10 minutes)
    .venv/bin/python benchmarks/soak.py --hours 1 --json

A benchmark, not a test: tests/test_soak.py runs it for one hour of audio and asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_asc.model import Model
from edge_asc.sinks import PredictionLog
from edge_asc.sources import Source
from edge_asc.stream import LiveStream

ROOT = Path(__file__).resolve().parents[1]
US8K = ROOT.parent / "shared" / "data" / "urbansound8k-16k"
RSS_GOAL_MB = 2.0
RATE = 16000


class LoopSource(Source):
    """Clips played round and round, handed out in microphone-sized blocks (views, no copies)."""

    def __init__(self, loop: np.ndarray, seconds: float, block_seconds: float = 0.1) -> None:
        self.rate, self.channels = RATE, 1
        self.description = f"{len(loop) / RATE:.0f}-s loop of shared clips"
        self._loop = loop[:, None]
        self._total = round(seconds * RATE)
        self._block = round(block_seconds * RATE)
        self.position = 0  # samples handed out

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        if self.position >= self._total:
            return None
        start = self.position % self._loop.shape[0]
        n = min(self._block, self._loop.shape[0] - start, self._total - self.position)
        self.position += n
        return self._loop[start : start + n]


def load_loop(clips: int) -> tuple[np.ndarray, list[str]]:
    """The first fold-3 clip of each of `clips` classes, 4 s each, back to back."""
    with open(US8K / "meta.csv", newline="") as fh:
        rows = sorted(
            (r for r in csv.DictReader(fh) if r["fold"] == "3"), key=lambda r: r["filename"]
        )
    chosen: dict[str, str] = {}
    for row in rows:
        chosen.setdefault(row["class"], row["filename"])
    names = sorted(chosen.values())[:clips]
    audio = [sf.read(US8K / name, dtype="float32")[0] for name in names]
    return np.concatenate(audio).astype(np.float32), names


def rss_mb() -> float:
    """Resident set size of this process, from the kernel."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def soak(
    hours: float,
    every_min: float,
    warmup_min: float,
    clips: int,
    block_seconds: float = 0.1,
    out=sys.stdout,
) -> dict:
    loop, names = load_loop(clips)
    model = Model()
    notices: list[str] = []
    source = LoopSource(loop, hours * 3600, block_seconds)
    live = LiveStream(source, model, notify=notices.append)
    per_loop = round(len(loop) / RATE / live.hop_seconds)
    if per_loop * live.hop_seconds * RATE != len(loop):
        raise ValueError("the loop must be a whole number of hops long")
    total_windows = int(hours * 3600 / live.hop_seconds)
    last_loop = (total_windows // per_loop - 2) * per_loop  # the last loop wholly streamed
    first: list[np.ndarray] = []
    last: list[np.ndarray] = []
    curve: list[tuple[float, float, float]] = []  # (audio minutes, wall seconds, RSS MB)
    backlog_max = {"samples": 0, "frames": 0, "flags": 0}
    held_max = 0
    next_sample, step = 0.0, every_min * 60
    start = time.perf_counter()
    print(
        f"soak: {hours:g} h of audio, loop of {len(names)} clips ({len(loop) / RATE:.0f} s)",
        file=out,
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "predictions.jsonl"
        with PredictionLog(log_path, top_k=10, max_bytes=2**20, keep=2) as log:
            for pred in live.predictions():
                log.write(pred)
                held_max = max(held_max, log.held)
                if per_loop <= pred.index < 2 * per_loop:  # the first loop after the stream's
                    first.append(np.concatenate([pred.probabilities, pred.smoothed]))
                elif last_loop <= pred.index < last_loop + per_loop:
                    last.append(np.concatenate([pred.probabilities, pred.smoothed]))
                audio_s = pred.offset + pred.window_seconds
                if audio_s >= warmup_min * 60:
                    for key, value in live.backlog.items():
                        backlog_max[key] = max(backlog_max[key], value)
                if audio_s >= next_sample:
                    point = (audio_s / 60, time.perf_counter() - start, rss_mb())
                    curve.append(point)
                    print(
                        f"  audio {point[0]:8.1f} min  wall {point[1]:7.1f} s  "
                        f"RSS {point[2]:7.2f} MB  backlog {live.backlog}",
                        file=out,
                        flush=True,
                    )
                    next_sample += step
        log_files = sorted(p.name for p in Path(tmp).iterdir())
        log_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
    wall = time.perf_counter() - start
    curve.append((source.position / RATE / 60, wall, rss_mb()))
    after = [rss for minutes, _, rss in curve if minutes >= warmup_min]
    diff = float(np.max(np.abs(np.array(first) - np.array(last)))) if first and last else None
    result = {
        "audio_hours": source.position / RATE / 3600,
        "windows": total_windows,
        "wall_s": wall,
        "audio_per_wall_s": source.position / RATE / wall,
        "rss_curve_mb": [[round(m, 1), round(r, 3)] for m, _, r in curve],
        "rss_after_warmup_mb": after[0] if after else None,
        "rss_growth_mb": (max(after) - after[0]) if after else None,
        "backlog_max": backlog_max,
        "log_held_max": held_max,
        "log_files": log_files,
        "log_bytes": log_bytes,
        "loop_windows": per_loop,
        "compared_windows": min(len(first), len(last)),
        "first_vs_last_max_diff": diff,
        "notices": notices,
    }
    growth = result["rss_growth_mb"]
    print(
        f"done: {result['audio_hours']:.2f} h of audio in {wall:.0f} s "
        f"({result['audio_per_wall_s']:.0f}x real time); RSS growth after {warmup_min:g} min "
        f"of warm-up: {growth:.2f} MB (goal <= {RSS_GOAL_MB:g}); largest backlog "
        f"{backlog_max}; first vs last loop: max difference {diff}",
        file=out,
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="audio to stream")
    parser.add_argument("--every-min", type=float, default=60.0, help="RSS sample interval")
    parser.add_argument("--warmup-min", type=float, default=10.0, help="audio before the baseline")
    parser.add_argument("--clips", type=int, default=10, help="clips in the loop (one a class)")
    parser.add_argument("--block", type=float, default=0.1, help="seconds per source read")
    parser.add_argument("--json", action="store_true", help="end with the result as JSON")
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout
    result = soak(args.hours, args.every_min, args.warmup_min, args.clips, args.block, out)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
