"""The prediction log: its fields, per-line flushing, CSV, rotation and the disk cap."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.prediction import Prediction
from edge_asc.sinks import SUFFIX_FORMATS, PredictionLog, csv_header, record, rotate

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
    with PredictionLog(path) as log:
        log.write(prediction(0))
        log.write(prediction(1))
    with PredictionLog(path, max_bytes=line_bytes + 10, keep=1) as log:  # room for one record
        log.write(prediction(2))
    old = [json.loads(line)["offset_s"] for line in (tmp_path / "out.jsonl.1").open()]
    assert old == [0.0, 0.5] and json.loads(path.read_text())["offset_s"] == 1.0


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


def test_a_long_last_line_is_not_cut(tmp_path):
    """A last line longer than any record cannot be a cut record: keep it, start a new line."""
    path = tmp_path / "out.jsonl"
    with PredictionLog(path) as log:
        log.write(prediction(0))
    with path.open("a") as fh:
        fh.write("x" * 70_000)
    with PredictionLog(path, max_bytes=10**6) as log:
        log.write(prediction(1))
    lines = path.read_text().splitlines()
    assert lines[1] == "x" * 70_000 and json.loads(lines[2])["offset_s"] == 0.5


# --- files it did not write: refused, left byte for byte as they were -------------------------


def foreign_files(folder: Path, shared_data: Path) -> dict[str, Path]:
    """Real files a --log could be pointed at by mistake."""
    from edge_asc.model import default_model_path

    files = {
        "recording.flac": (shared_data / "tut-urban-2018-demo" / "park.flac").read_bytes(),
        "model.onnx": default_model_path().read_bytes(),
        "notes.txt": b"shopping list\nmilk\n",
        "no-newline.jsonl": b"one short line that is not a record",
        "other.jsonl": b'{"time": "noon", "what": "a log of another program"}\n',
        "other.csv": b"time,temperature\n12:00,21.5\n",
        "a-list.jsonl": b'[1, 2, 3]\n{"time":"x"}\n',
        "binary.log": bytes(range(256)) * 40,
        "old-mac.csv": b"time,temperature\r12:00,21.5\r\n",  # a bare CR: csv.Error
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


@pytest.mark.parametrize("log_format", ["jsonl", "csv"])
def test_files_it_did_not_write_are_refused_untouched(log_format, tmp_path, shared_data):
    for name, path in foreign_files(tmp_path, shared_data).items():
        before = path.read_bytes()
        if SUFFIX_FORMATS.get(path.suffix, log_format) != log_format:
            continue  # refused for its name already: test_a_format_mismatch_is_refused
        with pytest.raises(EdgeAscError, match="was not written by edge-asc"):
            PredictionLog(path, log_format=log_format)
        assert path.read_bytes() == before, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        foreign_files(tmp_path, shared_data)
    )


@pytest.mark.parametrize("target", ["/dev/null", "/dev/full", "/proc/version", "fifo"])
def test_what_is_not_a_regular_file_is_refused(target, tmp_path):
    """Records written there would be lost (or block: a FIFO nobody reads)."""
    path = Path(target)
    if target == "fifo":
        path = tmp_path / "fifo.jsonl"
        os.mkfifo(path)
    with pytest.raises(EdgeAscError, match="is not a regular file"):
        PredictionLog(path)


def test_a_rotation_never_replaces_a_file_it_did_not_write(tmp_path):
    path = tmp_path / "out.jsonl"
    with PredictionLog(path) as log:
        log.write(prediction(0))
    (tmp_path / "out.jsonl.2").write_text("my notes\n")
    with pytest.raises(EdgeAscError, match=r"would replace .*out\.jsonl\.2"):
        PredictionLog(path, keep=2)
    assert (tmp_path / "out.jsonl.2").read_text() == "my notes\n"
    with PredictionLog(path, keep=1) as log:  # .2 is beyond what this rotation touches
        log.write(prediction(1))


def test_a_format_mismatch_is_refused(tmp_path):
    """Never CSV into a JSON Lines log (nor the other way), nor under the other's name."""
    jsonl, csv_log = tmp_path / "out.jsonl", tmp_path / "out.csv"
    with PredictionLog(jsonl) as log:
        log.write(prediction(0))
    with PredictionLog(csv_log, log_format="csv") as log:
        log.write(prediction(0))
    for path, fmt in ((jsonl, "csv"), (csv_log, "jsonl")):
        before = path.read_bytes()
        with pytest.raises(EdgeAscError, match="named as"):
            PredictionLog(path, log_format=fmt)
        assert path.read_bytes() == before
        renamed = path.rename(tmp_path / f"{path.name}.log")  # the content alone decides
        with pytest.raises(EdgeAscError, match=f"--log-format {fmt} would not append"):
            PredictionLog(renamed, log_format=fmt)
        assert renamed.read_bytes() == before
    with pytest.raises(EdgeAscError, match="named as JSON Lines"):
        PredictionLog(tmp_path / "new.jsonl", log_format="csv")
    assert not (tmp_path / "new.jsonl").exists()
    with PredictionLog(tmp_path / "new.log", log_format="csv") as log:  # a neutral name: either
        log.write(prediction(0))


@pytest.mark.parametrize("log_format", ["jsonl", "csv"])
def test_its_own_cut_first_line_and_an_empty_file_are_taken(log_format, tmp_path):
    """A kill in the very first write leaves part of a record (or the CSV header): ours."""
    whole = tmp_path / f"whole.{log_format}"
    with PredictionLog(whole, log_format=log_format) as log:
        log.write(prediction(0))
    first = whole.read_bytes().split(b"\n")[0]
    for name, data in (("cut", first[: len(first) // 2]), ("empty", b"")):
        path = tmp_path / f"{name}.{log_format}"
        path.write_bytes(data)
        with PredictionLog(path, log_format=log_format, notify=lambda _: None) as log:
            log.write(prediction(1))
        lines = path.read_text().splitlines()
        assert len(lines) == (2 if log_format == "csv" else 1), (name, lines)
        assert lines[-1] == whole.read_text().splitlines()[-1].replace("0.0", "0.5", 1)


def test_a_full_disk_is_said_once_and_held_records_are_capped(tmp_path):
    """Every write fails (a file size limit of 0: EFBIG, as a full disk gives ENOSPC). The log
    never raises, says so once, and holds only the newest records up to its limit."""
    import resource
    import signal

    notices: list[str] = []
    log = PredictionLog(tmp_path / "out.jsonl", notify=notices.append, hold_bytes=4096)
    line_bytes = len(log.line(prediction()))
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, old[1]))
    try:
        for i in range(200):
            log.write(prediction(i))
        assert len(notices) == 1 and "File too large" in notices[0]
        assert log.held == 4096 // line_bytes
        log.close()  # the disk still full
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)
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


def test_a_log_in_a_folder_it_may_not_search_is_one_line(tmp_path, monkeypatch):
    """As a non-root user, --log ~other/x.jsonl raised PermissionError from Path.is_dir.

    Root may search any folder, so the stat's refusal is simulated for this one path.
    """
    target = tmp_path / "private" / "x.jsonl"
    real_stat = Path.stat

    def stat(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    with pytest.raises(EdgeAscError, match=r"cannot open the log .*: Permission denied"):
        PredictionLog(target)
