"""`edge-asc bench` and its library: runs on real audio, prints well-formed tables and JSON.

No timed assertions: figures depend on the machine and its load. The tests check that every
benchmark runs, that each table has the rows it promises with finite positive figures, that the
peers produce the same frames from the same audio, and that user errors are one line, exit 2.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from edge_asc.audio_io import read_audio
from edge_asc.bench import frontend, inference, memory
from edge_asc.bench.command import demo_recording
from edge_asc.bench.report import Report, Table, fmt
from edge_asc.bench.timing import measure
from edge_asc.model import Model, sha256_hex


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from edge_asc.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def figures(table: dict, column: str) -> list[object]:
    return [row[column] for row in table["rows"]]


@pytest.fixture(scope="module")
def demo() -> np.ndarray:
    """The bundled real recording (16 s of UrbanSound8K clips) at the shipped model's rate."""
    return read_audio(demo_recording(), Model().card.frontend.sample_rate)


@pytest.fixture(scope="module")
def bench_json() -> dict:
    """One quick `edge-asc bench --json`, compared against the shipped model itself."""
    model = str(Model().path)
    result = run(
        "bench", "--json", "--runs", "3", "--fast-seconds", "4", "--realtime-seconds", "2",
        "--compare", model,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bench_json_has_every_table_with_positive_figures(bench_json):
    keys = [t["key"] for t in bench_json["tables"]]
    assert keys == ["frontend", "inference", "operator_kinds", "operators", "end_to_end", "memory"]
    tables = {t["key"]: t for t in bench_json["tables"]}
    fe = tables["frontend"]["rows"]
    names = {row["front-end"] for row in fe}
    assert {frontend.OURS_HOP, frontend.OURS_WINDOW, frontend.LIBROSA, frontend.PSF} <= names
    for row in fe:  # every front-end makes the same frames from the same audio
        assert row["frames"] == (25 if row["input"] == "0.5-s hop" else 51), row
        assert all(positive(v) for k, v in row.items() if k not in ("front-end", "input")), row
    assert all(r["x ours, same input"] == 1.0 for r in fe if r["front-end"].startswith("edge-"))
    inference_table = tables["inference"]
    assert len(inference_table["rows"]) == 2  # the model and the --compare copy
    for column in inference_table["columns"][2:]:
        assert all(positive(v) for v in figures(inference_table, column)), column
    assert inference_table["rows"][0][inference_table["columns"][-1]] == 1.0
    e2e = {row["measure"]: row["value"] for row in tables["end_to_end"]["rows"]}
    # The steady share comes from /proc's 10-ms CPU ticks over the smoke replay's one second or
    # so of labels, where 2 % of a core is 20 ms: under load it can round to no tick at all.
    steady = e2e.pop("real time: CPU share, first to last label")
    assert isinstance(steady, float) and 0 <= steady < 100, steady
    assert all(positive(v) for v in e2e.values()), e2e
    memory_rows = tables["memory"]["rows"]
    listener = [r for r in memory_rows if not r["step"].startswith(("(optional)", "`edge-asc"))]
    assert listener[0]["step"] == "Python interpreter" and len(listener) == 7
    assert all(positive(r["peak RSS MiB"]) for r in listener), listener
    assert all(positive(r["adds MiB"]) for r in listener[1:]), listener  # each import costs
    assert positive(memory_rows[-1]["peak RSS MiB"])  # the listener end to end
    assert "onnxruntime" in bench_json["environment"] and bench_json["environment"]["cpu"]
    assert bench_json["command"].startswith("edge-asc bench --compare ")
    assert bench_json["goals"] == []  # a user's figures: the goals are the developer's
    assert positive(bench_json["elapsed_s"])


def test_bench_user_errors_are_one_line_exit_2(tmp_path):
    for args in (["--runs", "0"], ["--audio", str(tmp_path / "missing.flac")]):
        result = run("bench", *args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edge-asc: "), result.stderr
        assert "Traceback" not in result.stderr


def test_frontend_table_skips_a_missing_peer_with_a_note(demo, monkeypatch):
    real = frontend.optional
    monkeypatch.setattr(
        frontend, "optional", lambda name: None if name == "librosa" else real(name)
    )
    config = Model().card.frontend
    found, notes = frontend.candidates(demo[: 3 * config.sample_rate], config)
    assert frontend.LIBROSA not in {c.name for c in found}
    assert any("librosa is not installed" in note for note in notes)


def test_latency_and_operator_profile_of_the_shipped_model(demo):
    model = Model()
    x = inference.real_window(demo, model.card)
    assert x.shape == (1, 1, model.card.frontend.n_mels, model.card.window_frames)
    call = inference.onnx_call(inference.onnx_session(model.path), x)
    probs = call()
    assert probs.shape == (1, len(model.labels)) and np.isclose(probs.sum(), 1, atol=1e-4)
    both = inference.ensemble_call([call, call])
    assert np.allclose(both(), probs)
    result = inference.run_latency({"a": call, "b": both}, runs=3, reference="a", warmup=1)
    assert set(result.stats) == {"a", "b"} and result.stats["a"].runs == 3
    profile = inference.profile_ops(model.path, x, runs=3)
    assert profile.total_us > 0 and any(op.startswith("QLinear") for op in profile.micros)
    kinds = inference.category_table({"INT8": profile}).to_dict()
    shares = [r["INT8 %"] for r in kinds["rows"] if r["INT8 %"] != "-"]
    assert math.isclose(sum(shares), 100, rel_tol=1e-6)
    ops = inference.op_table({"INT8": profile}).to_dict()
    assert ops["rows"][-1]["operator"] == "all kernels"


def test_measure_interleaves_every_candidate():
    calls = []
    stats = measure({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 4, 1)
    assert calls.count("a") == calls.count("b") == 5
    assert calls[2:6] == ["a", "b", "b", "a"]  # the order rotates round by round
    assert all(s.runs == 4 and 0 < s.median_ms <= s.p99_ms for s in stats.values())
    with pytest.raises(ValueError):
        measure({"a": lambda: None}, 0)


def test_report_renders_markdown_and_json_without_nan():
    table = Table("t", "A table", ["name", "value"])
    table.add("missing", float("nan"))
    table.add("big", 12345.6)
    table.notes.append("a note")
    report = Report("edge-asc bench", {"cpu": "x"}, [table], notes=["skipped"])
    data = json.loads(report.to_json())
    assert data["tables"][0]["rows"][0] == {"name": "missing", "value": None}
    text = report.to_markdown()
    assert "| missing | n/a |" in text and "| big | 12,346 |" in text and "- a note" in text
    assert "Note: skipped" in text
    assert [fmt(v) for v in (None, 3, 0.1234, 2.5, 0.001234)] == [
        "n/a",
        "3",
        "0.123",
        "2.50",
        "0.0012",
    ]


def test_the_live_path_loads_no_display_training_or_benchmark_code():
    """What a plain listener imports: not rich (the rich display's), torch, onnx, the training
    or benchmark packages; the model loads without hashlib's OpenSSL (libcrypto)."""
    code = (
        "import sys\n"
        "import edge_asc.cli, edge_asc.live, edge_asc.stream, edge_asc.sources, edge_asc.sinks\n"
        "from edge_asc.model import Model\n"
        "Model()\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert "edge_asc.model" in loaded and "onnxruntime" in loaded  # the probe saw the app
    unwanted = {"rich", "torch", "onnx", "librosa", "edge_asc.training", "edge_asc.bench"}
    assert not unwanted & loaded, unwanted & loaded
    assert not {"_hashlib", "numpy.random"} & loaded


def test_a_stdin_listener_loads_no_audio_file_library(tmp_path, shared_data):
    """soundfile (cffi and libsndfile, 3.2 MiB) is for files: a listener on raw PCM runs,
    and logs, without it."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('MODULES ' + ' '.join(sys.modules)))\n"
        "from edge_asc.cli import main\n"
        "sys.argv = ['edge-asc', 'listen', '--stdin', '--rate', '16000',\n"
        "            '--display', 'plain', '--log', sys.argv[1]]\n"
        "main()\n"
    )
    clip = shared_data / "urbansound8k-16k" / "fold1" / "101415-3-0-2.flac"
    pcm = (read_audio(clip, 16000) * 32767).astype("<i2").tobytes()
    log = tmp_path / "predictions.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", code, str(log)], input=pcm, capture_output=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert log.stat().st_size > 0  # it listened and logged
    loaded = set(out.stderr.decode().rsplit("MODULES ", 1)[1].split())
    assert "edge_asc.sources.stdin" in loaded
    assert "soundfile" not in loaded


def test_model_id_is_the_files_sha256():
    import hashlib

    model = Model()
    data = model.path.read_bytes()
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert model.id.endswith("@" + hashlib.sha256(data).hexdigest()[:12])


def test_peak_rss_of_a_fresh_interpreter_grows_with_its_imports():
    bare = memory.peak_rss_mib("pass")
    with_numpy = memory.peak_rss_mib("import numpy")
    assert positive(bare) and positive(with_numpy) and with_numpy > bare


def test_a_listener_without_the_dashboard_options_loads_no_dashboard(tmp_path):
    """`listen` without --http or --clips runs without the dashboard's server, hmac or sqlite3
    (about 8 MiB of a listener's memory)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('MODULES ' + ' '.join(sys.modules)))\n"
        "from edge_asc.cli import main\n"
        "sys.argv = ['edge-asc', 'listen', '--from-file', sys.argv[1], '--fast',\n"
        "            '--display', 'plain', '--log', sys.argv[2]]\n"
        "main()\n"
    )
    log = tmp_path / "predictions.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", code, str(demo_recording()), str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert log.stat().st_size > 0  # it listened and logged
    loaded = set(out.stderr.rsplit("MODULES ", 1)[1].split())
    assert "edge_asc.live" in loaded
    assert not {"edge_asc.dashboard", "http.server", "hmac", "sqlite3"} & loaded
