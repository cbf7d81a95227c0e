"""Where the app's resident memory comes from: peak RSS after each start-up step, in fresh
interpreters, so a peak-RSS figure can be read against its parts (Python, NumPy, onnxruntime,
the app's own imports, the model session)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge_asc.bench.report import Table

# Standalone (no imports of our own): what it prints must not include what it measures with.
_PRINT_VMHWM = """
try:
    print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))
except (OSError, StopIteration):
    print("None")
"""
_APP_MODULES = "edge_asc.cli, edge_asc.live, edge_asc.stream, edge_asc.sources, edge_asc.sinks"


def steps(model: Path | None) -> list[tuple[str, str]]:
    """(label, code) pairs, each step including the ones before it."""
    load = f"Model({str(model)!r})" if model is not None else "Model()"
    return [
        ("Python interpreter", "pass"),
        ("+ import numpy", "import numpy"),
        ("+ import onnxruntime", "import numpy, onnxruntime"),
        ("+ the app's modules (soundfile, soxr, typer, rich)", f"import {_APP_MODULES}"),
        (
            "+ the model's onnxruntime session",
            f"import {_APP_MODULES}\nfrom edge_asc.model import Model\n{load}",
        ),
    ]


def peak_rss_mib(code: str) -> float | None:
    """Peak RSS (VmHWM) of a fresh interpreter that ran `code`; None without /proc."""
    probe = f"{code}\n{_PRINT_VMHWM}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    value = out.stdout.split()[-1]
    return None if value == "None" else int(value) / 1024


def memory_table(model: Path | None, listen_peak_mib: float | None) -> Table:
    table = Table("memory", "Memory: peak RSS after each start-up step", ["step", "peak RSS MiB"])
    for label, code in steps(model):
        table.add(label, peak_rss_mib(code))
    if listen_peak_mib is not None:
        table.add("`edge-asc listen`, real-time replay (above)", listen_peak_mib)
    table.notes.append("Each step in a fresh interpreter, cumulative; 1 MB = 0.954 MiB.")
    return table
