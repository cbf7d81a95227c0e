"""A microphone listener's memory: `edge-asc listen` on a private PulseAudio server's source.

The test suite's PulseAudio daemon (tests/pulse_server.py) is the microphone: a null sink whose
monitor is the default source, with `paplay` playing real clips into it, so PortAudio starts
and probes the ALSA devices exactly as it does at a real microphone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from bench_data import ROOT

from edge_asc.bench.endtoend import run_listen


def microphone_peak_rss(
    signal: np.ndarray, rate: int, seconds: float
) -> tuple[float | None, str | None]:
    """(peak RSS in MiB of a microphone listener over `seconds`, None; or None, why not)."""
    missing = [b for b in ("pulseaudio", "pactl", "paplay") if shutil.which(b) is None]
    if missing:
        return None, f"no microphone figure: {', '.join(missing)} not installed (pulseaudio)"
    if str(ROOT / "tests") not in sys.path:
        sys.path.append(str(ROOT / "tests"))
    from pulse_server import SINK_16K, PulseServer  # the tests' own daemon

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = PulseServer(folder, [SINK_16K], "virtmic.monitor")
        clip = folder / "talk.wav"
        sf.write(clip, np.clip(signal, -1, 1), rate, subtype="PCM_16")
        server.start()
        player = None
        try:
            player = subprocess.Popen(
                ["paplay", "--device=virtmic", str(clip)], env=server.env, stderr=subprocess.DEVNULL
            )
            args = ["--display", "plain", "--log", str(folder / "mic.jsonl")]
            windows = max(2, round(seconds / 0.5))
            run = run_listen(args, timeout=seconds + 120, env=server.env, max_windows=windows)
        finally:
            if player is not None:
                player.terminate()
                player.wait()
            server.stop()
    return run.max_rss_mib, None
