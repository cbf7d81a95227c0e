"""benchmarks/replay_speed.py on a few seconds of the shared clips: it runs and prints figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "replay_speed.py"


def test_replay_speed_prints_audio_per_cpu_second():
    cmd = [sys.executable, str(SCRIPT), "--minutes", "0.1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "replayed 6 s of audio (11 windows)" in result.stdout
    rate = re.search(r"^(\d+) s of audio per CPU second", result.stdout, re.MULTILINE)
    assert rate is not None and int(rate.group(1)) > 0, result.stdout
