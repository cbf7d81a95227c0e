"""benchmarks/bench_all.py in smoke mode: every table, well formed, with finite positive figures.

CI runs this so the benchmark scripts never rot; it asserts nothing about speed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_all.py"
MODEL_TABLES = [
    "inference",
    "operator_kinds",
    "operators",
    "int8_ceiling",
    "accuracy_cost",
    "pi_estimate",
]


def bench_all(*args: str) -> dict:
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--json", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("page") / "benchmarks.md"


@pytest.fixture(scope="module")
def smoke(quick_run: Path, page: Path) -> dict:
    return bench_all("--run", str(quick_run), "--out", str(page))


def test_the_page_is_written_from_the_run_and_names_no_machine_path(smoke, page):
    text = page.read_text()
    assert text.startswith("# Benchmarks\n") and smoke["command"] in text
    assert "#### Goals" in text and "| goal | measured | met |" in text
    for goal in smoke["goals"]:
        assert goal["goal"] in text
    assert str(SCRIPT.parents[1]) not in text  # no folder of this machine


def test_every_table_is_printed(smoke):
    keys = [t["key"] for t in smoke["tables"]]
    assert keys == ["frontend", *MODEL_TABLES, "end_to_end", "cpu_per_hop", "memory"]
    assert smoke["command"].startswith(".venv/bin/python benchmarks/bench_all.py --smoke")
    for lib in ("numpy", "onnxruntime", "torch", "librosa", "python_speech_features"):
        assert smoke["environment"][lib], lib
    assert [g["met"] for g in smoke["goals"] if g["met"] is None] == []


def test_inference_compares_every_way_to_run_the_ensemble(smoke):
    table = next(t for t in smoke["tables"] if t["key"] == "inference")
    assert [r["model"] for r in table["rows"]] == [
        "fused INT8 (shipped configuration)",
        "fused FP32",
        "members one by one, FP32",
        "members one by one, INT8",
        "PyTorch eager, members one by one",
        "PyTorch eager, fused module",
    ]
    for row in table["rows"]:
        assert all(positive(row[c]) for c in table["columns"][2:]), row


def test_accuracy_per_cost_lists_every_model_the_pipeline_compares(smoke, quick_run):
    table = next(t for t in smoke["tables"] if t["key"] == "accuracy_cost")
    names = [r["model"] for r in table["rows"]]
    members = [m["name"] for m in json.loads((quick_run / "report.json").read_text())["members"]]
    assert names[0].startswith("DCASE 2022 baseline") and "parent" in names[1]
    assert len(members) >= 2
    assert names[2 : 2 + len(members)] == [f"member {m}" for m in members]
    assert len(names) == len(members) + 6
    accuracy = next(c for c in table["columns"] if c.startswith("clip accuracy"))
    for row in table["rows"]:
        figures = [row[c] for c in ("parameters", "MACs / window", "file KB", "median ms")]
        assert all(positive(v) for v in figures), row
        assert row[accuracy] is None or 0 <= row[accuracy] <= 100


def test_pi_estimate_and_end_to_end_figures_are_positive(smoke):
    tables = {t["key"]: t for t in smoke["tables"]}
    pi = tables["pi_estimate"]
    assert "ESTIMATED" in pi["title"]
    for row in pi["rows"]:
        assert all(positive(row[c]) for c in pi["columns"][1:]), row
    e2e = {r["measure"]: r["value"] for r in tables["end_to_end"]["rows"]}
    # CPU ticks of 10 ms over a 3-s smoke replay: the steady share may round to none under load
    steady = e2e.pop("real time: CPU share, first to last label")
    assert isinstance(steady, float) and 0 <= steady < 100, steady
    assert all(positive(v) for v in e2e.values()), e2e


def test_a_missing_run_is_named_in_a_note(quick_run, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    from bench_all import missing_run_note

    assert missing_run_note(quick_run) is None
    note = missing_run_note(tmp_path / "no-run")
    assert note is not None and str(tmp_path / "no-run") in note and "--run" in note
