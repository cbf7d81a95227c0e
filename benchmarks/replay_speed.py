"""How fast `edge-asc listen --from-file --fast` runs: seconds of audio per CPU second.

The whole process counts (interpreter start, imports, model load, decoding, features, model,
smoothing, output), because on a Pi that is what a replay or a backlog costs. The figure is the
CPU time (user + system, from os.wait4 on the child) it took to replay about ten minutes of
real shared audio, concatenated into one temporary FLAC. The goal is >= 100 s of audio per CPU
second. A benchmark, not a test: it prints, it does not assert. bench_all.py includes it.

    .venv/bin/python benchmarks/replay_speed.py [--minutes 10] [--model PATH] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_data import real_signal

from edge_asc.bench.endtoend import listen_args, run_listen, write_replay

GOAL = 100.0  # seconds of audio per CPU second
RATE = 16000  # the shared clips' rate and the shipped model's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="audio to replay")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: shipped)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "replay.flac"
        seconds = write_replay(real_signal(args.minutes * 60), RATE, args.minutes * 60, audio)
        run = run_listen(listen_args(audio, args.model, fast=True, threads=args.threads))
    print(f"replayed {seconds:.0f} s of audio ({run.windows} windows) in {run.wall_s:.2f} s wall")
    print(f"CPU {run.cpu_s:.2f} s, peak RSS {run.max_rss_mib:.1f} MiB")
    print(f"{seconds / run.cpu_s:.0f} s of audio per CPU second (goal >= {GOAL:.0f})")


if __name__ == "__main__":
    main()
