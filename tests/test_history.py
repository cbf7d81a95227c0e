"""The event history in a real SQLite file: round trip, schema and migration, refusals,
retention, a full disk (RLIMIT_FSIZE, as the log's tests simulate it), on real events of the
shipped model over real shared clips."""

from __future__ import annotations

import dataclasses
import resource
import shutil
import signal
import sqlite3
from datetime import timedelta

import pytest
from replay import SEQUENCE, join_clips, predictions

from edge_asc.errors import EdgeAscError
from edge_asc.events import EventDetector, detect
from edge_asc.history import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    EventSink,
    History,
    read_events,
)


@pytest.fixture(scope="module")
def preds(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("history") / "sequence.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE], path)
    return predictions(path)


@pytest.fixture(scope="module")
def events(preds):
    found = detect(preds)
    assert [e.label for e in found] == [label for _, label in SEQUENCE]
    return found


def dicts(events) -> list[dict]:
    return [e.to_dict() for e in events]


def integrity(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_events_round_trip_and_filters(events, tmp_path):
    db = tmp_path / "h.db"
    with History(db) as history:
        for event in events:
            history.add_event(event)
    assert dicts(read_events(db)) == dicts(events)
    assert [e.label for e in read_events(db, label="siren")] == ["siren"]
    third = events[2].start
    assert dicts(read_events(db, since=third)) == dicts(events[2:])
    assert read_events(db, label="car_horn") == []
    assert integrity(db) == "ok"


def test_the_sink_stores_what_the_detector_ends(preds, events, tmp_path):
    db = tmp_path / "h.db"
    sink = EventSink(History(db), EventDetector(), window_every_s=5.0)
    for pred in preds:
        sink.write(pred)
    sink.close()
    stored = read_events(db)
    assert [dataclasses.replace(e, id="") for e in stored] == [
        dataclasses.replace(e, id="") for e in events
    ]
    with sqlite3.connect(db) as conn:
        offsets = [r[0] for r in conn.execute("SELECT offset_s FROM windows ORDER BY rowid")]
    assert offsets == [p.offset for p in preds if p.offset % 5.0 == 0]  # thinned: every 5 s


def test_a_new_file_is_wal_versioned_and_marked(tmp_path):
    db = tmp_path / "h.db"
    history = History(db)
    assert history._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    history.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_a_version_1_file_is_migrated_forward_keeping_its_events(events, tmp_path):
    """A file as the first schema left it (events, no windows table) with an event in it."""
    db = tmp_path / "old.db"
    with History(tmp_path / "new.db") as history:
        history.add_event(events[0])
    with sqlite3.connect(db) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute(f"ATTACH '{tmp_path / 'new.db'}' AS new")
        conn.execute("INSERT INTO events SELECT * FROM new.events")
    assert SCHEMA_VERSION == 2
    with History(db) as history:
        history.add_event(events[1])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM windows").fetchone()[0] == 0
    assert dicts(read_events(db)) == dicts(events[:2])


def test_files_it_cannot_use_are_refused_untouched(shared_data, tmp_path):
    audio = tmp_path / "clip.db"
    shutil.copy(shared_data / "urbansound8k-16k" / "fold3" / f"{SEQUENCE[0][0]}.flac", audio)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    newer = tmp_path / "newer.db"
    History(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    cases = {audio: "not an SQLite database", other: "another application", newer: "newer"}
    for path, why in cases.items():
        before = path.read_bytes()
        with pytest.raises(EdgeAscError, match=why) as err:
            History(path)
        assert "\n" not in str(err.value)
        with pytest.raises(EdgeAscError, match=why):
            read_events(path)
        assert path.read_bytes() == before
    with pytest.raises(EdgeAscError, match="directory"):
        History(tmp_path)
    with pytest.raises(EdgeAscError, match="no history"):
        read_events(tmp_path / "missing.db")


def test_retention_deletes_only_what_its_policy_says(events, tmp_path):
    """Events ending 1, 29.9, 30.1 and 400 days before `now`; 30 days kept."""
    now = events[0].end.timestamp()
    aged = []
    for i, days in enumerate((1, 29.9, 30.1, 400)):
        shift = timedelta(days=days)
        aged.append(
            dataclasses.replace(
                events[i], id=f"e{i}", start=events[i].start - shift, end=events[i].end - shift
            )
        )
    db = tmp_path / "h.db"
    with History(db, clock=lambda: now) as forever:  # no policy: nothing deleted
        for event in aged:
            forever.add_event(event)
        assert forever.prune() == 0
    with History(db, keep_days=30, clock=lambda: now) as history:  # pruned as it opens
        assert history.prune() == 0
    assert [e.id for e in read_events(db)] == ["e1", "e0"]  # oldest first: 29.9, then 1 day
    with History(db, keep_days=1.5, clock=lambda: now) as later:
        assert [e.id for e in read_events(db)] == ["e0"]  # 29.9 days: pruned as it opened
        assert later.prune(now + 0.4 * 86_400) == 0  # 1.4 days
        assert later.prune(now + 0.6 * 86_400) == 1  # 1.6 days
    assert read_events(db) == []
    with pytest.raises(EdgeAscError):
        History(db, keep_days=0)


@pytest.fixture
def no_file_growth():
    """Set RLIMIT_FSIZE to 0 for this process: every write fails with EFBIG (as a full disk's
    with ENOSPC); call the returned function to lift it."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def apply(limit: int | None) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (old[0] if limit is None else limit, old[1]))

    yield apply
    resource.setrlimit(resource.RLIMIT_FSIZE, old)
    signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_is_said_once_and_nothing_stored_is_lost(events, tmp_path, no_file_growth):
    db = tmp_path / "h.db"
    said: list[str] = []
    history = History(db, notify=said.append)
    history.add_event(events[0])
    no_file_growth(0)
    for event in events[1:4]:
        history.add_event(event)
    assert history.held == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # still there
    no_file_growth(None)
    history.add_event(events[4])
    history.close()
    assert len([s for s in said if "cannot write the history" in s]) == 1, said
    assert len([s for s in said if "writable again: 4 held rows written" in s]) == 1, said
    assert dicts(read_events(db)) == dicts(events)
    assert integrity(db) == "ok"


def test_the_rows_held_are_capped_oldest_dropped(events, tmp_path, no_file_growth):
    db = tmp_path / "h.db"
    said: list[str] = []
    history = History(db, notify=said.append, hold_rows=2)
    no_file_growth(0)
    for event in events[:4]:
        history.add_event(event)
    assert history.held == 2
    no_file_growth(None)
    history.add_event(events[4])
    history.close()
    assert "3 held rows written, 2 dropped" in said[-1]
    assert dicts(read_events(db)) == dicts(events[2:])
