"""benchmarks/arm64_check.py: the installed wheel on an emulated Debian 12 arm64 (the 64-bit
Raspberry Pi OS userland) gives the probabilities it gives here.

The whole check builds the userland with mmdebstrap and runs it under qemu-user, so it needs
those Debian packages and root; `.ci/run` installs them, so in CI it runs (a few minutes from
nothing). The built userland is kept in the checkout's ignored .cache/ between local runs; CI
starts from a fresh clone, so there it is always built.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "arm64_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("arm64_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_installed_app_gives_the_same_probabilities_on_arm64(shared_data):
    missing = [t for t in ("mmdebstrap", "qemu-aarch64-static") if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install mmdebstrap "
            "arch-test qemu-user-static binfmt-support; .ci/run does)"
        )
    cmd = [sys.executable, str(SCRIPT), "--json", "--data", str(shared_data)]
    done = subprocess.run(
        [*cmd, "--cache", str(REPO / ".cache" / "arm64")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode in (0, 1) and done.stdout, done.stderr  # 1: ran, and differs
    result = json.loads(done.stdout)
    a76, a72 = result["arm64"]["cortex-a76"], result["arm64"]["cortex-a72"]
    for found in (a76, a72):
        assert found["machine"] == "aarch64" and found["debian"].startswith("12.")
        assert found["python"].startswith("3.11.")
        assert "PortAudio" in found["portaudio"] and found["libsndfile"]
    assert a76["dotprod"] and not a72["dotprod"]  # both of onnxruntime's int8 kernels ran
    assert result["demo_windows"] == 31
    assert [p for p in result["problems"] if "probabilities differ" not in p] == []

    gaps, rates = result["differences"], result["sample_rates"]
    assert gaps.keys() == {"demo", *rates}
    assert max(gaps.values()) <= 1e-4, gaps
    assert result["passed"] and done.returncode == 0


def runs_of(module, probabilities: dict[str, float]):
    """A Runs record as the commands print it, with one clip of these probabilities."""
    runs = module.Runs(info=f"model {module.VENV}/lib/default.onnx", card={"labels": ["a", "b"]})
    runs.demo = [
        {
            "offset_s": 0.0,
            "label": "a",
            "smoothed_label": "a",
            "confidence": 0.9,
            "smoothed_confidence": 0.9,
        }
    ]
    runs.demo_tally = "demo: 1 of 1 windows right"
    clip = {
        "file": "clips/x.flac",
        "label": "a",
        "windows": 7,
        "silent_windows": 0,
        "probabilities": probabilities,
    }
    runs.classify = {"cortex-a76": [clip]}
    return runs


def test_a_difference_over_the_tolerance_or_another_label_fails_the_check():
    module = load_script()
    x86 = runs_of(module, {"a": 0.7, "b": 0.3})
    same = runs_of(module, {"a": 0.70005, "b": 0.29995})
    gaps, problems = module.differences(x86, same)
    assert gaps == {"demo": 0.0, "clips/x.flac": pytest.approx(5e-5)} and problems == []

    drifted = runs_of(module, {"a": 0.7002, "b": 0.2998})
    gaps, problems = module.differences(x86, drifted)
    assert gaps["clips/x.flac"] == pytest.approx(2e-4)
    assert problems == ["probabilities differ by up to 2.00e-04 (allowed 0.0001)"]

    relabelled = copy.deepcopy(same)
    relabelled.demo[0]["smoothed_label"] = "b"
    relabelled.classify["cortex-a76"][0]["windows"] = 6
    relabelled.card = {"labels": ["a", "c"]}
    _, problems = module.differences(x86, relabelled)
    assert len(problems) == 3, problems
