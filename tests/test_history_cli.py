"""`listen --db`, `events` and `summary` as real processes on real clips and a real SQLite file:
kill -9 twenty times at random moments, a full disk under a running listener, retention, and
the events read back exactly as detected."""

from __future__ import annotations

import csv
import io
import json
import random
import resource
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from listener import EDGE_ASC, Listener, edge_asc, read_log
from replay import SEQUENCE, join_clips, predictions

from edge_asc.errors import EdgeAscError
from edge_asc.events import EventDetector
from edge_asc.history import History, read_events

KILLS = 20
ROUNDS = 30  # the five clips, again and again, in the kill -9 test
LABELS = [label for _, label in SEQUENCE]


def key(event: dict) -> tuple:
    """What a replay must reproduce exactly (ids and wall-clock times differ between runs)."""
    return (
        event["label"],
        event["start_offset_s"],
        event["duration_s"],
        event["windows"],
        event["peak_confidence"],
        event["mean_confidence"],
        event["peak_dbfs"],
    )


def expected(path: Path) -> list[tuple[int, tuple]]:
    """(index of the window that ends it, key) of every event of a fast replay of `path`, from
    the same pipeline in this process; flush() ends the last at index len(predictions)."""
    preds = predictions(path)
    detector = EventDetector()
    found = [(i, key(e.to_dict())) for i, p in enumerate(preds) for e in detector.push(p)]
    return found + [(len(preds), key(e.to_dict())) for e in detector.flush()]


@pytest.fixture(scope="module")
def sequence(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seq") / "sequence.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE], path)
    return path


def db_rows(db: Path) -> list[dict]:
    return [e.to_dict() for e in read_events(db)]


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_events_and_summary_read_back_what_was_detected(sequence, tmp_path):
    db = tmp_path / "h.db"
    run = edge_asc(
        "listen", "--from-file", str(sequence), "--fast", "--display", "none", "--db", str(db)
    )
    assert run.returncode == 0, run.stderr
    want = [k for _, k in expected(sequence)]
    assert [k[0] for k in want] == LABELS

    out = edge_asc("events", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [key(r) for r in rows] == want  # the classes played, in the order played
    for row in rows:
        assert row["start"].endswith("Z") and row["end"].endswith("Z")
        assert row["start"] <= row["end"]
    text = edge_asc("events", "--db", str(db))
    assert [line.split()[4] for line in text.stdout.splitlines()] == LABELS
    table = list(csv.DictReader(io.StringIO(edge_asc("events", "--db", str(db), "--csv").stdout)))
    assert [r["label"] for r in table] == LABELS and table[0]["id"] == rows[0]["id"]
    siren = edge_asc("events", "--db", str(db), "--json", "--label", "siren").stdout
    assert [json.loads(line)["id"] for line in siren.splitlines()] == [rows[1]["id"]]
    assert edge_asc("events", "--db", str(db), "--since", "1h").stdout == text.stdout
    assert edge_asc("events", "--db", str(db), "--since", "2999-01-01").stdout == ""

    summary = edge_asc("summary", "--db", str(db), "--png", str(tmp_path / "s.png"))
    assert summary.returncode == 0, summary.stderr
    counted = {line.split()[0]: int(line.split()[1]) for line in summary.stdout.splitlines()[1:-1]}
    assert counted == dict.fromkeys(LABELS, 1)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_day = edge_asc("summary", "--db", str(db), "--by", "day")
    assert by_day.returncode == 0 and by_day.stdout.splitlines()[0].split()[0] == "day"


def test_png_without_matplotlib_is_one_line(sequence, tmp_path):
    db = tmp_path / "h.db"
    History(db).close()
    blocked = "import sys; sys.modules['matplotlib'] = None; from edge_asc.cli import main; main()"
    result = subprocess.run(
        [EDGE_ASC[0], "-c", blocked, "summary", "--db", str(db), "--png", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "edge-asc: --png needs matplotlib: pip install matplotlib (or the 'train' extra)"
    ]
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events", "--db", "{missing}"], "no history at"),
        (["events", "--db", "{dir}"], "is a directory"),
        (["events", "--db", "{audio}"], "not an SQLite database"),
        (["events", "--db", "{db}", "--json", "--csv"], "choose one of --json and --csv"),
        (["events", "--db", "{db}", "--since", "yesterday"], "--since must be"),
        (["summary", "--db", "{db}", "--by", "week"], "--by must be one of hour, day"),
        (
            ["listen", "--from-file", "{audio}", "--event-gap", "2"],
            "apply to --db, --mqtt and --on-event only",
        ),
        (["listen", "--from-file", "{audio}", "--db", "{audio}"], "not an SQLite database"),
        (
            ["listen", "--from-file", "{audio}", "--db", "{db}", "--class-threshold", "siren"],
            "CLASS=P",
        ),
        (
            ["listen", "--from-file", "{audio}", "--db", "{db}", "--class-threshold", "siren=2"],
            "--class-threshold siren must be at least 0 and at most 1",
        ),
        (["listen", "--from-file", "{audio}", "--db", "{db}", "--event-class", "cat"], "cat"),
        (
            ["listen", "--from-file", "{audio}", "--db", "{db}", "--db-keep-days", "0"],
            "--db-keep-days",
        ),
        (["listen", "--from-file", "{audio}", "--db", "{db}", "--event-gap", "-1"], "--event-gap"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, shared_data, tmp_path):
    audio = tmp_path / "clip.flac"
    audio.write_bytes(
        (shared_data / "urbansound8k-16k" / "fold3" / "12647-3-3-0.flac").read_bytes()
    )
    db = tmp_path / "h.db"
    History(db).close()
    names = {"missing": tmp_path / "none.db", "dir": tmp_path, "audio": audio, "db": db}
    before = audio.read_bytes()
    result = edge_asc(*[a.format(**names) for a in args])
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert audio.read_bytes() == before


def test_retention_through_listen(sequence, tmp_path):
    """--db-keep-days 30 deletes the events that ended 31 days ago, keeps those of 29 days ago
    and stores the new ones."""
    db = tmp_path / "h.db"
    first = edge_asc(
        "listen", "--from-file", str(sequence), "--fast", "--display", "none", "--db", str(db)
    )
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY start_ts")]
        for event_id, days in zip(ids, (31, 31, 29, 29, 1), strict=True):
            conn.execute(
                "UPDATE events SET start_ts = start_ts - ?, end_ts = end_ts - ? WHERE id = ?",
                (days * 86_400, days * 86_400, event_id),
            )
    again = edge_asc(
        "listen",
        "--from-file",
        str(sequence),
        "--fast",
        "--display",
        "none",
        "--db",
        str(db),
        "--db-keep-days",
        "30",
    )
    assert again.returncode == 0, again.stderr
    kept = [e["id"] for e in db_rows(db)]
    assert kept[:3] == ids[2:] and len(kept) == 3 + len(SEQUENCE)


def test_kill_9_at_random_moments_keeps_every_ended_event(shared_data, tmp_path):
    """A replay of the five clips 30 times over (150 events, 15 minutes of audio: a few
    seconds with --fast), killed at random moments until it was killed 20 times (a run the
    machine let finish first is checked too): after each, the file passes integrity_check and
    holds, in order, every event that ended before the last window the listener logged, and
    none it had not come to."""
    long = tmp_path / "long.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE] * ROUNDS, long)
    want = expected(long)
    assert [k[0] for _, k in want] == LABELS * ROUNDS
    db = tmp_path / "h.db"
    cmd = [*EDGE_ASC, "listen", "--from-file", str(long), "--fast", "--display", "none"]
    began = time.monotonic()
    whole = subprocess.run([*cmd, "--db", str(db)], capture_output=True, timeout=300, check=False)
    seconds = time.monotonic() - began  # start-up and the whole replay: kills fall within it
    assert whole.returncode == 0, whole.stderr
    assert [key(r) for r in db_rows(db)] == [k for _, k in want]
    rng = random.Random(19)
    stored = len(want)
    partial = killed = 0
    run = 0
    while killed < KILLS:
        run += 1
        assert run <= 2 * KILLS, f"only {killed} of {run} runs were killed before they ended"
        log = tmp_path / f"run{run}.jsonl"
        proc = subprocess.Popen(
            [*cmd, "--db", str(db), "--log", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(0.05, 0.85) * seconds)
        proc.kill()  # a run the machine let finish sooner is checked the same (all 150 events)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (-signal.SIGKILL, 0), err.decode()
        killed += proc.returncode == -signal.SIGKILL
        assert integrity(db) == "ok"
        rows = db_rows(db)
        new = [key(r) for r in rows[stored:]]
        assert new == [k for _, k in want[: len(new)]]  # a prefix, in order, exactly as detected
        logged = read_log(log)
        last = len(logged) - 1  # the window the listener had come to
        ended_before = sum(1 for index, _ in want if index < last)
        reached = sum(1 for index, _ in want if index <= last)
        assert ended_before <= len(new) <= reached, (run, last, len(new))
        partial += 0 < len(new) < len(want)
        if proc.returncode == 0:
            assert new == [k for _, k in want]
        stored = len(rows)
    assert partial >= KILLS // 2, partial  # most kills hit the listener mid-replay
    done = edge_asc(
        "listen", "--from-file", str(long), "--fast", "--display", "none", "--db", str(db)
    )
    assert done.returncode == 0, done.stderr
    rows = db_rows(db)
    assert [key(r) for r in rows[stored:]] == [k for _, k in want]
    assert integrity(db) == "ok"
    print(f"{killed} kills over {seconds:.1f}-s runs: {partial} mid-replay, {stored} events")


def test_a_full_disk_under_a_listener_is_said_once_and_loses_nothing(sequence, tmp_path):
    pcm = (sf.read(sequence, dtype="int16")[0]).astype(np.int16).tobytes()
    db = tmp_path / "h.db"
    listener = Listener(
        tmp_path,
        "listen",
        "--stdin",
        "--rate",
        "16000",
        "--db",
        str(db),
        "--display",
        "plain",
        stdin=subprocess.PIPE,
    )
    try:
        stdin = listener.proc.stdin
        assert stdin is not None

        def stored() -> int:
            try:
                return len(read_events(db))
            except EdgeAscError:
                return 0

        stdin.write(pcm)
        stdin.flush()
        listener.wait_for(lambda: stored() >= 4, 120, "the first four events")
        before = db_rows(db)
        resource.prlimit(listener.proc.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        shown = len(listener.stdout.splitlines())
        stdin.write(pcm)
        stdin.flush()
        listener.wait_stderr("cannot write the history", timeout=120)
        listener.wait_for(  # the 30 s go on being classified and shown
            lambda: len(listener.stdout.splitlines()) >= shown + 55, 60, "windows while full"
        )
        assert integrity(db) == "ok"
        assert db_rows(db)[: len(before)] == before  # nothing stored is lost
        resource.prlimit(listener.proc.pid, resource.RLIMIT_FSIZE, (-1, -1))  # space again
        stdin.write(pcm)
        stdin.flush()
        listener.wait_stderr("is writable again", timeout=120)
        stdin.close()
        code = listener.wait(timeout=120)
    finally:
        listener.kill()
    err = listener.stderr
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("cannot write the history") == 1 and err.count("is writable again") == 1
    assert [r["label"] for r in db_rows(db)] == LABELS * 3
    assert integrity(db) == "ok"
