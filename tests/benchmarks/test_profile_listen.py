"""benchmarks/profile_listen.py on a few seconds of the shared clips: it runs, every part shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "profile_listen.py"


def test_profile_listen_prints_cpu_per_hop_and_its_parts():
    cmd = [sys.executable, str(SCRIPT), "--seconds", "4", "--paced-seconds", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("|")[1].strip(): float(line.split("|")[2])
        for line in result.stdout.splitlines()
        if line.startswith("| ") and line.split("|")[2].strip()[:1].isdigit()
    }
    runs = [name for name in rows if name.startswith(("unpaced", "paced"))]
    assert len(runs) == 2 and all(rows[name] > 0 for name in runs), rows
    assert rows["model (Model.predict)"] > 0 and rows["front-end (WindowStream.push)"] > 0, rows
