"""Faults in a live stream, each survived by a real listener and said once.

- the device gone mid-stream: a real PulseAudio daemon is stopped and started again under a
  running `edge-asc listen`; the listener reopens it with backoff and hears the next clip;
- a silent microphone: the null sink's monitor delivers digital zeros while nothing plays;
- constant input and NaN/inf samples: float PCM on --stdin with stretches of zeros, of one
  stuck value and of NaN/inf inside a real clip;
- input overflow: a real PortAudio capture with a ring too small for the consumer's pace.

A fault is a line on stderr (the journal) once per episode, a warning on the windows it touches
in the log and on the display, and never an exit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from listener import Listener, read_log
from pulse_server import SINK_16K, PulseServer, require_pulseaudio
from rich.console import Console

from edge_asc.api import Classifier
from edge_asc.audio_io import read_audio
from edge_asc.live import RichDisplay
from edge_asc.model import Model
from edge_asc.sources import MicSource
from edge_asc.stream import LiveStream

SOUND_DBFS = -90.0  # above this a window holds some of a clip; digital silence is -120
RATE = 16000
HOP = 8000  # samples between windows at the default 0.5-s hop


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture
def clip(shared_data) -> Path:
    return shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"


# --- the device lost and found ----------------------------------------------------------------


def test_device_lost_mid_stream_is_reopened_and_heard_again(tmp_path, clip):
    """Stop the sound server under a running listener, start it again: the listener says it
    lost the device, retries with backoff, says when it is back, goes on logging (the windows
    after the gap flagged, numbered on) and hears the next clip. Along the way the idle null
    sink is a silent microphone: warned once when the silence passes --stuck-after, and the
    warning clears when the clip plays."""
    require_pulseaudio()
    runtime = tmp_path / "pulse"
    runtime.mkdir()
    server = PulseServer(runtime, [SINK_16K], "virtmic.monitor")
    server.start()
    log = tmp_path / "out.jsonl"
    args = ["listen", "--log", str(log), "--display", "plain", "--stuck-after", "2"]
    listener = Listener(tmp_path, *args, "--top-k", "10", env=server.env)
    try:
        # Nothing plays: zeros from the monitor, a silent microphone after 2 s.
        listener.wait_for(
            lambda: any("silent_input" in r["warnings"] for r in read_log(log)), 60, "silence"
        )
        assert listener.stderr.count("the input has been silence") == 1
        assert "WARNING silent_input" in listener.stdout  # the display says it too

        server.stop()
        listener.wait_stderr("lost the input device")
        before = len(read_log(log))
        time.sleep(1.0)  # let a reopen attempt or two fail against no server
        assert listener.proc.poll() is None
        assert "is back" not in listener.stderr

        server.start()
        ready = time.monotonic()
        listener.wait_stderr("the input device is back", timeout=60)
        recovery = time.monotonic() - ready
        listener.wait_for(lambda: len(read_log(log)) >= before + 2, 60, "windows after the gap")

        played = tmp_path / "clip.wav"
        data, _ = sf.read(clip, dtype="int16")
        sf.write(played, np.concatenate([np.zeros(RATE // 2, np.int16), data]), RATE)
        server.play(played, "virtmic")

        def heard() -> bool:
            after = [r for r in read_log(log) if r["reconnects"] == 1]
            return sum(r["dbfs"] > SOUND_DBFS for r in after) >= 4

        listener.wait_for(heard, 60, "the clip after the reconnect")
        listener.wait_stderr("the input varies again")
        code = listener.stop(signal.SIGTERM)
    finally:
        listener.kill()
        server.stop()

    err = listener.stderr
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("lost the input device") == 1 and err.count("is back") == 1
    assert err.splitlines()[-1].startswith("edge-asc: stopped:")
    assert err.splitlines()[-1].endswith(", 1 reconnects")
    text = log.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line whole
    assert [r["reconnects"] for r in records] == sorted(r["reconnects"] for r in records)
    first_after = next(i for i, r in enumerate(records) if r["reconnects"] == 1)
    assert "reconnected" in records[first_after]["warnings"]
    offsets = [r["offset_s"] for r in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)  # numbered on
    loud = [r for r in records[first_after:] if r["dbfs"] > SOUND_DBFS]
    assert all("silent_input" not in r["warnings"] for r in loud)
    print(f"device back {recovery:.2f} s after the server answered again")


# --- constant input and non-finite samples, through --stdin ------------------------------------


def test_constant_input_and_nan_are_said_once_and_flagged(classifier, clip, tmp_path):
    """Float PCM: clip, 12 s of zeros, the clip with NaN/inf samples, 12 s stuck at 0.25, the
    clip. Each constant stretch is one warning when it passes 10 s and one line when it ends;
    the windows inside carry the warning; the NaN/inf samples are replaced by zeros (the model
    sees exactly the offline windows of the clip with zeros there) and said once."""
    audio = read_audio(clip, RATE)  # 4 s, 64000 samples
    broken = audio.copy()
    bad = np.arange(20000, 20600)  # 600 samples inside the second clip
    broken[bad[::3]] = np.nan
    broken[bad[1::3]] = np.inf
    broken[bad[2::3]] = -np.inf
    zeros, stuck = np.zeros(12 * RATE, np.float32), np.full(12 * RATE, 0.25, np.float32)
    parts = [audio, zeros, broken, stuck, audio]
    signal_in = np.concatenate(parts).astype("<f4")
    starts = np.cumsum([0] + [p.size for p in parts])  # sample where each part begins
    log = tmp_path / "out.jsonl"
    args = [
        "listen",
        "--stdin",
        "--rate",
        "16000",
        "--format",
        "FLOAT_LE",
        "--log",
        str(log),
        "--top-k",
        "10",
    ]
    listener = Listener(tmp_path, *args, "--display", "plain", stdin=subprocess.PIPE)
    try:
        assert listener.proc.stdin is not None
        listener.proc.stdin.write(signal_in.tobytes())
        listener.proc.stdin.close()
        code = listener.wait(timeout=120)
    finally:
        listener.kill()
    err = listener.stderr
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("the input has been silence (all zeros) for 10.") == 1
    assert err.count("the input has been one constant value (0.25) for 10.") == 1
    # (12 s and a little: the clip after the zeros starts with a few zeros of its own)
    assert err.count("the input varies again after 12.") == 2
    assert err.count("s of silence (all zeros)") == 1
    assert err.count("s of one constant value (0.25)") == 1
    assert err.count("NaN or infinite input samples replaced by zeros") == 1
    assert "600 non-finite samples replaced" in err.splitlines()[-1]

    records = read_log(log)
    assert log.read_text().endswith("\n")
    assert records[-1]["nonfinite"] == 600

    def window(rec: dict) -> tuple[int, int]:
        """The samples a window's frames span (each frame is centred: half a frame either side)."""
        start = round(rec["offset_s"] * RATE)
        return start - 320, start + RATE + 320

    # A window's warnings are the input's state when the 0.1-s block that completed it was read.
    late = 1600
    for rec in records:
        _, hi = window(rec)
        for k, code_ in ((1, "silent_input"), (3, "stuck_input")):
            if starts[k] + 10 * RATE <= hi and hi + late < starts[k + 1]:
                assert code_ in rec["warnings"], rec
            if hi + late < starts[k] + 10 * RATE or hi >= starts[k + 1]:
                assert code_ not in rec["warnings"], rec
    flagged = [r for r in records if "nonfinite_samples" in r["warnings"]]
    assert len(flagged) == 1
    nan_at = starts[2] + bad[0]
    assert window(flagged[0])[0] <= nan_at < window(flagged[0])[1] + HOP
    # The display shows the warnings on the same windows.
    shown = [line for line in listener.stdout.splitlines() if "WARNING" in line]
    assert len(shown) == sum(bool(r["warnings"]) for r in records)

    # What the model saw: exactly the offline windows of the input with zeros for NaN/inf.
    clean = np.nan_to_num(signal_in, nan=0.0, posinf=0.0, neginf=0.0)
    offline = classifier.window_probabilities(clean)
    got = np.array([[r["top_k"][label] for label in classifier.labels] for r in records])
    assert got.shape == offline.shape
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)


def test_rich_display_shows_the_warnings(classifier, clip):
    """The panel a person watches names an active warning in words."""
    from edge_asc.sources import FileSource

    source = FileSource(clip, realtime=False)
    pred = next(LiveStream(source, classifier.model).predictions())
    pred.warnings = ("silent_input",)
    console = Console(record=True, width=100)
    display = RichDisplay(console=console)
    console.print(display.render(pred))
    assert "microphone muted or unplugged?" in console.export_text()


# --- overflow, with a real PortAudio capture ---------------------------------------------------


def test_overflow_is_counted_logged_and_the_stream_goes_on(tmp_path, monkeypatch):
    """A 50-ms ring behind a consumer that dawdles: the capture overflows for real; the count
    rises in the predictions, the windows after an overflow are flagged, one notice is said
    (at most one a minute of audio), and predictions keep coming."""
    require_pulseaudio()
    runtime = tmp_path / "pulse"
    runtime.mkdir()
    server = PulseServer(runtime, [SINK_16K], "virtmic.monitor")
    server.start()
    for key in ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER"):
        monkeypatch.setenv(key, server.env[key])
    import sounddevice as sd

    sd._terminate()  # PortAudio reads the device list when initialised: see this server
    sd._initialize()
    notices: list[str] = []
    mic = MicSource(rate=RATE, buffer_seconds=0.05)
    try:
        live = LiveStream(mic, Model(), notify=notices.append)
        preds = []
        for pred in live.predictions():
            preds.append(pred)
            time.sleep(0.3)  # the consumer falls behind the device
            if len(preds) == 6:
                break
    finally:
        mic.close()
        server.stop()
    assert mic.overflows > 0 and preds[-1].overflows > 0
    first = next(i for i, p in enumerate(preds) if p.overflows)
    assert "input_overflow" in preds[first].warnings
    assert first < len(preds) - 1  # the stream went on after the overflow
    overflow_notices = [n for n in notices if "input overflow" in n]
    assert len(overflow_notices) == 1, notices
