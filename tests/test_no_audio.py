"""No audio, no window: an empty stream or a file shorter than half a window
gets no prediction; classify refuses it in one line (exit 2), listen logs nothing and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asc.api import Classifier
from edge_asc.features import FrontEndConfig
from edge_asc.windowing import WindowStream

HALF_WINDOW = 8000  # samples at 16 kHz: half of the shipped model's 1-s window


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from edge_asc.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, input=stdin.decode(), text=True, timeout=300)


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_listen_on_empty_stdin_logs_no_window(tmp_path):
    log = tmp_path / "log.jsonl"
    done = run_cli("listen", "--stdin", "--rate", "16000", "--display", "plain", "--log", str(log))
    assert done.returncode == 0, done.stderr
    assert records(log) == [] and done.stdout == ""
    assert "no audio" in done.stderr and "0 windows" in done.stderr


@pytest.mark.parametrize("samples", [1, 100, HALF_WINDOW - 1])
def test_a_file_under_half_a_window(tmp_path, samples):
    path = tmp_path / "short.wav"
    sf.write(path, np.full(samples, 0.1), 16000, subtype="PCM_16")
    done = run_cli("classify", str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "too short" in done.stderr
    log = tmp_path / "log.jsonl"
    done = run_cli(
        "listen", "--from-file", str(path), "--fast", "--display", "plain", "--log", str(log)
    )
    assert done.returncode == 0, done.stderr
    assert records(log) == []
    assert "no window" in done.stderr and "0 windows" in done.stderr


def test_half_a_window_is_one_tiled_window_in_classify_and_listen(tmp_path, shared_data):
    """From half a window on, a short clip is tiled to one window, as the training clips were."""
    audio, rate = sf.read(shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac")
    path = tmp_path / "short.wav"
    sf.write(path, audio[:HALF_WINDOW], rate, subtype="PCM_16")
    result = Classifier().classify_file(path)
    assert result.windows == 1
    log = tmp_path / "log.jsonl"
    done = run_cli(
        "listen", "--from-file", str(path), "--fast", "--display", "none", "--log", str(log)
    )
    assert done.returncode == 0, done.stderr
    (record,) = records(log)
    assert record["label"] == result.label
    assert record["confidence"] == pytest.approx(result.probabilities[result.label], abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(samples=st.integers(0, 3 * HALF_WINDOW), chunk=st.integers(1, 5000))
def test_window_stream_gives_no_window_under_half_a_window(samples, chunk):
    stream = WindowStream(FrontEndConfig(), 51, 25)
    assert stream.min_samples == HALF_WINDOW
    signal = np.full(samples, 0.1, np.float32)
    count = sum(len(stream.push(signal[i : i + chunk]).indices) for i in range(0, samples, chunk))
    count += len(stream.flush().indices)
    expected = 0 if samples < HALF_WINDOW else max(1, (samples // 320 + 1 - 51) // 25 + 1)
    assert count == expected
