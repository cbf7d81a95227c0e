"""How fast `edge-asc listen --from-file --fast` runs: seconds of audio per CPU second.

The whole process counts (interpreter start, imports, model load, decoding, features, model,
smoothing, the JSON log), because on a Pi that is what a replay or a backlog costs. The figure is
the CPU time (user + system, from os.wait4 on the child) it took to replay about ten minutes of
real shared audio, concatenated into one temporary FLAC. The goal is >= 100 s of audio per CPU
second. A benchmark, not a test: it prints, it does not assert.

    .venv/bin/python benchmarks/replay_speed.py [--minutes 10] [--model PATH] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
US8K = ROOT.parent / "shared" / "data" / "urbansound8k-16k"
GOAL = 100.0  # seconds of audio per CPU second


def build_replay(out: Path, minutes: float) -> float:
    """Concatenate shared 4-s clips (every class, round robin) into `out`; returns seconds."""
    with open(US8K / "meta.csv", newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: (int(r["fold"]), r["filename"]))
    by_class: dict[str, list[str]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row["filename"])
    order = [f for group in zip(*by_class.values(), strict=False) for f in group]
    parts, total, rate = [], 0, 16000
    for name in order:
        data, rate = sf.read(US8K / name, dtype="int16")
        parts.append(data)
        total += data.shape[0]
        if total >= minutes * 60 * rate:
            break
    sf.write(out, np.concatenate(parts), rate, subtype="PCM_16")
    return total / rate


def edge_asc_command() -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("edge-asc")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from edge_asc.cli import main; main()"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="audio to replay")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: shipped)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "replay.flac"
        seconds = build_replay(audio, args.minutes)
        log = Path(tmp) / "replay.jsonl"
        cmd = [*edge_asc_command(), "listen", "--from-file", str(audio), "--fast"]
        cmd += ["--display", "none", "--log", str(log), "--threads", str(args.threads)]
        if args.model is not None:
            cmd += ["--model", str(args.model)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"edge-asc failed: {err.strip()}")
        with open(log) as fh:
            windows = sum(1 for _ in fh)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"replayed {seconds:.0f} s of audio ({windows} windows) in {wall:.2f} s wall")
    print(f"CPU {cpu:.2f} s (user {usage.ru_utime:.2f}, system {usage.ru_stime:.2f})")
    print(f"{seconds / cpu:.0f} s of audio per CPU second (goal >= {GOAL:.0f})")


if __name__ == "__main__":
    main()
