"""A shortened soak: one hour of real audio through the live pipeline, as fast as it goes.

benchmarks/soak.py runs it in its own process (so pytest's memory does not blur the figure)
and reports as JSON. The 24-hour run is the same script without --hours.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def test_an_hour_of_audio_holds_memory_queues_and_predictions_steady():
    args = ["--hours", "1", "--every-min", "5", "--warmup-min", "10", "--block", "0.5"]
    done = subprocess.run(
        [sys.executable, str(SOAK), *args, "--json"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print(done.stderr)
    assert result["audio_hours"] == 1.0
    # Memory: no growth to speak of once warm (the goal for 24 h is <= 2 MB).
    assert result["rss_growth_mb"] <= 2.0, result["rss_curve_mb"]
    # Queues: the consumer never holds more than a window and a block of audio, the log none.
    assert result["backlog_max"]["samples"] <= 2 * 16000
    assert result["backlog_max"]["frames"] <= 2 * 51
    assert result["log_held_max"] == 0
    # Rotation kept the disk capped: the live file and two old ones, 1 MiB each at most.
    assert result["log_files"] == [
        "predictions.jsonl",
        "predictions.jsonl.1",
        "predictions.jsonl.2",
    ]
    assert result["log_bytes"] <= 3 * (2**20 + 1000)
    # The same clips, an hour apart: the same probabilities, bit for bit (and smoothed).
    assert result["compared_windows"] == result["loop_windows"] > 0
    assert result["first_vs_last_max_diff"] == 0.0
    assert result["notices"] == []  # real clips: no fault to report
