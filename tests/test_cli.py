"""The `edge-asc` command as a user runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_asc.api import Classifier


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from edge_asc.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_classify_json_one_object_per_file(shared_data):
    files = [
        shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac",
        shared_data / "tut-urban-2018-demo" / "bus.flac",  # 48 kHz stereo 24-bit
    ]
    given = [str(f) for f in files]
    result = run("classify", "--json", *given)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    classifier = Classifier()
    for line, path in zip(lines, given, strict=True):
        obj = json.loads(line)
        assert obj["file"] == path
        assert set(obj["probabilities"]) == set(classifier.labels)
        assert abs(sum(obj["probabilities"].values()) - 1) < 1e-4
        assert obj["label"] == max(obj["probabilities"], key=obj["probabilities"].get)
        offline = classifier.classify_file(path)
        assert obj["label"] == offline.label
        assert np.isclose(obj["probabilities"][obj["label"]], offline.probabilities[offline.label])


def test_classify_bad_file_is_one_line_and_exit_2(tmp_path, shared_data):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    good = shared_data / "tut-urban-2018-demo" / "park.flac"
    result = run("classify", "--json", str(bad), str(good), str(tmp_path / "missing.flac"))
    assert result.returncode == 2
    assert len(result.stdout.strip().splitlines()) == 1  # the good file is still classified
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("edge-asc: ") for e in errors)
    assert "Traceback" not in result.stderr


def test_missing_model_is_one_line(tmp_path, shared_data):
    result = run("classify", "-m", str(tmp_path / "none.onnx"), str(shared_data / "README.md"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"edge-asc: model not found: {tmp_path / 'none.onnx'}"
    ]


def test_info_prints_the_card():
    result = run("info")
    assert result.returncode == 0, result.stderr
    assert "air_conditioner" in result.stdout and "MACs" in result.stdout
    card = json.loads(run("info", "--json").stdout)
    assert card["format_version"] == 1 and len(card["labels"]) == 10


def _meta_naming_missing(tmp_path):
    root = tmp_path / "meta"
    root.mkdir()
    (root / "meta.csv").write_text("filename,fold,class\nfold1/a.flac,1,x\nfold2/b.flac,2,y\n")
    return root


def _unreadable_audio(tmp_path, shared_data):
    root = tmp_path / "folders"
    for label in ("dog", "siren"):
        (root / label).mkdir(parents=True)
        (root / label / "x.wav").write_bytes(b"definitely not audio" * 10)
    return root


@pytest.mark.parametrize("case", ["missing", "empty", "meta_missing_files", "unreadable"])
def test_train_bad_data_is_one_line_and_exit_2(case, tmp_path, shared_data):
    data = {
        "missing": lambda: tmp_path / "does-not-exist",
        "empty": lambda: (tmp_path / "empty").mkdir() or tmp_path / "empty",
        "meta_missing_files": lambda: _meta_naming_missing(tmp_path),
        "unreadable": lambda: _unreadable_audio(tmp_path, shared_data),
    }[case]()
    result = run("train", str(data), "--out", str(tmp_path / "run"), "--quick")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("edge-asc: ") and "Traceback" not in result.stderr
    assert str(data.name) in lines[-1] or "x.wav" in lines[-1]
