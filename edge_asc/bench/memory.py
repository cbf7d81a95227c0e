"""Where the app's resident memory comes from: what each import and the model session cost.

Every step runs in a fresh interpreter and reports its peak RSS (VmHWM). The listener's steps
are cumulative, in the order `edge-asc listen` loads them, so each row's "adds" is what that
import costs on top of the ones before; the optional parts (the rich display, the microphone's
PortAudio, the dashboard, hashlib) are each measured on top of the whole listener.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge_asc.bench.report import Table

# Standalone (no imports of our own): what it prints must not include what it measures with.
_PRINT_VMHWM = """
try:
    status = {l.split(":")[0]: l.split()[1] for l in open("/proc/self/status") if "kB" in l}
    print(status["VmHWM"], status.get("RssFile", "None"))
except (OSError, KeyError):
    print("None None")
"""
_LIVE_MODULES = "edge_asc.cli, edge_asc.live, edge_asc.stream, edge_asc.sources, edge_asc.sinks"


def listener_steps(model: Path | None) -> list[tuple[str, str]]:
    """(label, code) pairs, each step including the ones before it."""
    load = f"Model({str(model)!r})" if model is not None else "Model()"
    imports = ["pass", "import numpy", "import onnxruntime", "import soundfile, soxr"]
    imports += ["import typer", f"import {_LIVE_MODULES}"]
    labels = [
        "Python interpreter",
        "+ numpy",
        "+ onnxruntime",
        "+ soundfile, soxr (audio files, resampling)",
        "+ typer (the command line)",
        "+ the app's live modules (cli, live, stream, sources, sinks)",
        "+ the model's onnxruntime session (Model())",
    ]
    codes = ["\n".join(imports[: i + 1]) for i in range(len(imports))]
    codes.append(f"{codes[-1]}\nfrom edge_asc.model import Model\n{load}")
    return list(zip(labels, codes, strict=True))


def optional_steps() -> list[tuple[str, str]]:
    """What a listener loads only when it needs it, each on top of the whole listener."""
    return [
        ("rich (the live panel at a terminal)", "import rich.live, rich.panel, rich.table"),
        ("sounddevice (a microphone: PortAudio probing the ALSA devices)", "import sounddevice"),
        ("edge_asc.dashboard.command (what listen imports for --http)", "import "
         "edge_asc.dashboard.command"),
        ("hashlib (OpenSSL's libcrypto; the app no longer loads it)", "import hashlib"),
    ]  # fmt: skip


def peak_rss_mib(code: str) -> float | None:
    """Peak RSS (VmHWM) of a fresh interpreter that ran `code`; None without /proc."""
    return _probe(code)[0]


def _probe(code: str) -> tuple[float | None, float | None]:
    """(peak RSS, resident pages of mapped files at the end), MiB, of a fresh interpreter.

    The files' pages are the libraries' code and data as far as they were touched: shared with
    any other process that maps the same libraries, and the part of the peak that no change to
    the app's own code can shrink.
    """
    probe = f"{code}\n{_PRINT_VMHWM}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    peak, files = (None if v == "None" else int(v) / 1024 for v in out.stdout.split()[-2:])
    return peak, files


def _added(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def memory_table(
    model: Path | None, listen_peak_mib: float | None, mic_peak_mib: float | None = None
) -> Table:
    table = Table(
        "memory",
        "Memory: peak RSS of each import and of the model session, in fresh interpreters",
        ["step", "peak RSS MiB", "adds MiB", "of it library files MiB"],
    )
    before = None
    for label, code in listener_steps(model):
        peak, files = _probe(code)
        table.add(label, peak, _added(peak, before), files)
        before = peak
    whole = listener_steps(model)[-1][1]
    for label, code in optional_steps():
        try:
            peak, files = _probe(f"{whole}\n{code}")
        except subprocess.CalledProcessError:  # not installed here (the dashboard, PortAudio)
            peak, files = None, None
        table.add(f"(optional) + {label}", peak, _added(peak, before), files)
    if listen_peak_mib is not None:
        table.add(
            "`edge-asc listen` from a file in real time, plain output, a log (end to end above)",
            listen_peak_mib,
            _added(listen_peak_mib, before),
            None,
        )
    if mic_peak_mib is not None:
        table.add(
            "`edge-asc listen` from a microphone (a PulseAudio source), plain output, a log",
            mic_peak_mib,
            _added(mic_peak_mib, before),
            None,
        )
    table.notes.append(
        "Each step in a fresh interpreter; the listener's steps are cumulative (adds: on top of "
        "the row before), the optional ones each on top of the model session. Peak RSS counts "
        "the pages of shared libraries a process has touched (onnxruntime's code, PortAudio's "
        "ALSA plugins), which other processes share; 1 MB = 0.954 MiB. Library files: the "
        "resident pages of mapped files at the step's end (RssFile), which only a smaller library "
        "could shrink: onnxruntime's pages alone are about 20 MiB once a session is made."
    )
    return table
