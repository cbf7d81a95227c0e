"""The scripts in examples/ run as a user runs them, on real shared audio, and say what they did."""

from __future__ import annotations

import csv
import io
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_asc.api import Classifier

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DOG = "urbansound8k-16k/fold3/12647-3-3-0.flac"  # a dog barking, labelled so with confidence
SIREN = "urbansound8k-16k/fold3/184623-8-0-3.flac"


def example(name: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(EXAMPLES / name), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def test_classify_folder_writes_the_verdicts_classify_file_gives(classifier, shared_data, tmp_path):
    folder = shared_data / "tut-urban-2018-demo"
    out = tmp_path / "verdicts.csv"
    done = example("classify_folder.py", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr.decode()
    rows = list(csv.DictReader(out.open()))
    files = sorted(folder.glob("*.flac"))
    assert [row["file"] for row in rows] == [path.name for path in files]
    for row, path in zip(rows, files, strict=True):
        result = classifier.classify_file(path)
        assert row["verdict"] == result.verdict
        assert float(row["confidence"]) == pytest.approx(result.confidence, abs=5e-4)
        assert int(row["windows"]) == result.windows == 19  # 10 s at a 0.5-s hop


def test_classify_folder_skips_a_broken_file_and_exits_2(shared_data, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dog.flac").write_bytes((shared_data / DOG).read_bytes())
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    done = example("classify_folder.py", str(tmp_path))  # the CSV on stdout
    assert done.returncode == 2
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert [(row["file"], row["verdict"]) for row in rows] == [("sub/dog.flac", "dog_bark")]
    (line,) = done.stderr.decode().splitlines()
    assert "skipped" in line and "broken.wav" in line


@pytest.mark.parametrize("args", [["/nonexistent"], [".", "--threshold", "2"]])
def test_classify_folder_refuses_bad_arguments(args, tmp_path):
    done = example("classify_folder.py", *args)
    assert done.returncode == 2 and b"classify_folder.py: " in done.stderr
    assert len(done.stderr.decode().splitlines()) == 1


def test_react_to_class_runs_the_command_once_per_sound(shared_data, tmp_path):
    """A dog, a siren, the dog again: two reactions to dog_bark, each with the class's env."""
    rate = 16000
    parts = [sf.read(shared_data / name, dtype="float32")[0] for name in (DOG, SIREN, DOG)]
    recording = tmp_path / "dog-siren-dog.flac"
    sf.write(recording, np.concatenate(parts), rate)
    marker = tmp_path / "heard.txt"
    run = f"sh -c {shlex.quote(f'echo $EDGE_ASC_CLASS $EDGE_ASC_OFFSET >> {marker}')}"
    done = example(
        "react_to_class.py", "dog_bark", "--file", str(recording), "--fast", "--run", run
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 2 and all("dog_bark" in line for line in lines)
    offsets = [float(line.split()[1]) for line in marker.read_text().splitlines()]
    assert len(offsets) == 2 and offsets[0] < 4.0 and 8.0 <= offsets[1] < 12.0


def test_react_to_class_from_stdin_pcm(shared_data):
    audio, _ = sf.read(shared_data / DOG, dtype="int16")
    done = example("react_to_class.py", "dog_bark", "--stdin", "16000", stdin=audio.tobytes())
    assert done.returncode == 0, done.stderr.decode()
    (line,) = done.stdout.decode().splitlines()
    assert "dog_bark" in line
    quiet = example("react_to_class.py", "siren", "--stdin", "16000", stdin=audio.tobytes())
    assert quiet.returncode == 0 and quiet.stdout == b""


def test_react_to_class_refuses_an_unknown_class(shared_data):
    done = example("react_to_class.py", "dog", "--file", str(shared_data / DOG))
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert "no class 'dog'" in line and "dog_bark" in line
