"""The prediction log: its fields, per-line flushing, CSV, rotation and the disk cap."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import numpy as np
import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.sinks import PredictionLog, csv_header, record, rotate
from edge_asc.stream import Prediction

LABELS = ["dog_bark", "siren", "jackhammer", "street_music"]


def prediction(index: int = 0, overflows: int = 0) -> Prediction:
    p = np.array([0.1, 0.6, 0.25, 0.05], dtype=np.float32)
    return Prediction(
        index=index,
        offset=index * 0.5,
        time=datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=timezone.utc),
        labels=LABELS,
        probabilities=p,
        smoothed=p,
        smoothed_label="siren",
        smoothed_confidence=0.6,
        dbfs=-23.456,
        overflows=overflows,
        model_id="edge-asc-ensemble@0123456789ab",
    )


def test_jsonl_record_and_flush_per_line(tmp_path):
    path = tmp_path / "logs" / "out.jsonl"
    log = PredictionLog(path, top_k=2)
    log.write(prediction(0))
    # Still open: the line is on disk already (flushed), whole.
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n")
    rec = json.loads(lines[0])
    assert rec == {
        "time": "2025-03-01T12:00:00.250Z",
        "offset_s": 0.0,
        "label": "siren",
        "confidence": 0.6,
        "top_k": {"siren": 0.6, "jackhammer": 0.25},
        "smoothed_label": "siren",
        "smoothed_confidence": 0.6,
        "dbfs": -23.46,
        "overflows": 0,
        "nonfinite": 0,
        "reconnects": 0,
        "warnings": [],
        "model": "edge-asc-ensemble@0123456789ab",
    }
    assert list(rec["top_k"]) == ["siren", "jackhammer"]  # best first
    log.close()


def test_appends_to_an_existing_log(tmp_path):
    path = tmp_path / "out.jsonl"
    with PredictionLog(path) as log:
        log.write(prediction(0))
    with PredictionLog(path) as log:
        log.write(prediction(1, overflows=3))
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["offset_s"] for r in recs] == [0.0, 0.5]
    assert recs[1]["overflows"] == 3


def test_csv_header_once_and_rows(tmp_path):
    path = tmp_path / "out.csv"
    for i in range(2):
        with PredictionLog(path, log_format="csv", top_k=3) as log:
            log.write(prediction(i))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert rows[1]["top1_label"] == "siren" and float(rows[1]["top3_p"]) == pytest.approx(0.1)
    assert rows[0]["time"] == "2025-03-01T12:00:00.250Z" and rows[0]["overflows"] == "0"
    assert path.read_text().splitlines()[0] == ",".join(csv_header(3))


def test_csv_with_other_columns_is_rotated_not_mixed(tmp_path):
    path = tmp_path / "out.csv"
    with PredictionLog(path, log_format="csv", top_k=2) as log:
        log.write(prediction())
    with PredictionLog(path, log_format="csv", top_k=3) as log:
        log.write(prediction())
    assert path.read_text().splitlines()[0] == ",".join(csv_header(3))
    assert (tmp_path / "out.csv.1").read_text().splitlines()[0] == ",".join(csv_header(2))


def test_rotation_caps_the_disk(tmp_path):
    path = tmp_path / "out.jsonl"
    line_bytes = len(json.dumps(record(prediction(), 3), separators=(",", ":"))) + 1
    with PredictionLog(path, max_bytes=3 * line_bytes, keep=2) as log:
        for i in range(50):
            log.write(prediction(i))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["out.jsonl", "out.jsonl.1", "out.jsonl.2"]
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= 3 * 3 * line_bytes  # (keep + 1) files of at most max_bytes each
    # Every file holds whole lines; the newest records are in the live file.
    for p in tmp_path.iterdir():
        assert all(json.loads(line) for line in p.read_text().splitlines())
    newest = [json.loads(line)["offset_s"] for line in path.read_text().splitlines()]
    assert newest[-1] == 49 * 0.5


def test_a_full_log_rotates_on_open(tmp_path):
    path = tmp_path / "out.jsonl"
    line_bytes = len(json.dumps(record(prediction(), 3), separators=(",", ":"))) + 1
    path.write_text("x" * (line_bytes + 20) + "\n")
    with PredictionLog(path, max_bytes=line_bytes + 10, keep=1) as log:  # room for one record
        log.write(prediction())
    assert (tmp_path / "out.jsonl.1").read_text().startswith("x")
    assert json.loads(path.read_text())["label"] == "siren"


def test_keep_zero_deletes(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    rotate(path, keep=0)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_bad_paths_and_options_are_user_errors(tmp_path):
    with pytest.raises(EdgeAscError, match="directory"):
        PredictionLog(tmp_path)
    with pytest.raises(EdgeAscError, match="format"):
        PredictionLog(tmp_path / "x.log", log_format="xml")
    (tmp_path / "file").write_text("")
    with pytest.raises(EdgeAscError, match="cannot open the log"):
        PredictionLog(tmp_path / "file" / "x.jsonl")


def test_a_torn_last_line_is_dropped_not_glued(tmp_path):
    """What kill -9 in the middle of a write can leave: the next run drops the cut record."""
    path = tmp_path / "out.jsonl"
    with PredictionLog(path) as log:
        log.write(prediction(0))
    whole = path.read_bytes()
    path.write_bytes(whole + whole[:57])  # a second record, cut
    notices: list[str] = []
    with PredictionLog(path, notify=notices.append) as log:
        log.write(prediction(1))
    recs = [json.loads(line) for line in path.read_text().splitlines()]  # every line parses
    assert [r["offset_s"] for r in recs] == [0.0, 0.5]
    assert len(notices) == 1 and "incomplete last line (57 bytes)" in notices[0]


def test_a_foreign_file_without_newline_is_not_cut(tmp_path):
    """A long last line cannot be a cut record of ours: keep it, start a new line."""
    path = tmp_path / "out.jsonl"
    path.write_text("x" * 70_000)
    with PredictionLog(path, max_bytes=10**6) as log:
        log.write(prediction(0))
    lines = path.read_text().splitlines()
    assert lines[0] == "x" * 70_000 and json.loads(lines[1])["offset_s"] == 0.0


def test_a_full_device_is_said_once_and_held_records_are_capped():
    """/dev/full: every write fails with ENOSPC. The log never raises, says so once, and holds
    only the newest records up to its limit."""
    notices: list[str] = []
    log = PredictionLog("/dev/full", notify=notices.append, hold_bytes=4096)
    line_bytes = len(log.line(prediction()))
    for i in range(200):
        log.write(prediction(i))
    assert len(notices) == 1 and "No space left on device" in notices[0]
    assert log.held == 4096 // line_bytes
    log.close()
    assert len(notices) == 2 and f"{4096 // line_bytes} records could not be written" in notices[1]


def test_a_write_error_leaves_no_partial_record(tmp_path):
    """A write that fails part way (here: a file size limit, as on a full disk) is truncated
    back, and the held records follow, in order, once writing works again."""
    import resource
    import signal

    path = tmp_path / "out.jsonl"
    notices: list[str] = []
    log = PredictionLog(path, notify=notices.append)
    line_bytes = len(log.line(prediction()))
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(2.5 * line_bytes), old[1]))
    try:
        for i in range(5):
            log.write(prediction(i))
        assert path.stat().st_size == 2 * line_bytes  # the third record went half, then back
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)
    log.write(prediction(5))
    log.close()
    assert [json.loads(x)["offset_s"] for x in path.read_text().splitlines()] == [
        0.5 * i for i in range(6)
    ]
    assert len(notices) == 2 and "writable again: 4 held records written" in notices[1]
