"""Event clips: cut from the real replayed audio, written whole under the event's id, kept
within their size and age limits (the most common class's oldest first), never written while
the disk is nearly full."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import soundfile as sf
from listener import edge_asc

from edge_asc.dashboard import clips as clips_module
from edge_asc.dashboard.clips import MARGIN_S, AudioRing, ClipFolder, clips_folder
from edge_asc.errors import EdgeAscError
from edge_asc.history import read_events

QUANTUM = 1 / 32768 + 1e-6  # a FLAC clip is 16-bit


def test_the_ring_cuts_what_was_read(sequence):
    audio, rate = sf.read(sequence, dtype="float32")
    ring = AudioRing(seconds=10.0)
    at, sizes = 0, [1, 160, 8000, 333, 16000, 7]
    while at < audio.size:
        size = sizes[at % len(sizes)]
        ring.add(np.repeat(audio[at : at + size, None], 2, axis=1), rate)  # stereo: downmixed
        at += size
    end = audio.size / rate
    cut = ring.cut(end - 5.0, end - 2.0)
    assert cut is not None and cut[1] == rate
    np.testing.assert_allclose(cut[0], audio[round((end - 5) * rate) : round((end - 2) * rate)])
    assert ring.cut(0.0, 1.0) is None  # older than the ring holds


def test_listen_clips_every_event_from_its_own_audio(sequence, tmp_path, labels):
    db = tmp_path / "history.db"
    run = edge_asc(
        "listen", "--from-file", str(sequence), "--fast", "--display", "none",
        "--db", str(db), "--clips",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = read_events(db)
    assert [e.label for e in events] == labels
    audio, rate = sf.read(sequence, dtype="float32")
    folder = clips_folder(db)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{e.id}.flac" for e in events)
    for event in events:
        with sf.SoundFile(folder / f"{event.id}.flac") as clip:
            assert clip.title == event.label and clip.samplerate == rate
            samples = clip.read(dtype="float32")
        first = max(0.0, event.start_offset_s - MARGIN_S)  # the stream's start cuts the margin
        last = min(event.start_offset_s + event.duration_s + MARGIN_S, audio.size / rate)
        start = round(first * rate)
        assert samples.size == pytest.approx((last - first) * rate, abs=2)
        np.testing.assert_allclose(samples, audio[start : start + samples.size], atol=QUANTUM)


def write_clip(folder: ClipFolder, event, seconds: float, mtime: float) -> None:
    noise = np.random.default_rng(len(event.id)).uniform(-0.5, 0.5, round(seconds * 16000))
    folder.write(event, noise.astype(np.float32), 16000)
    os.utime(folder.folder / f"{event.id}.flac", (mtime, mtime))
    folder.open()  # read back from disk, as at the next start


def test_retention_by_age_then_by_size_most_common_first(history, tmp_path):
    events = read_events(history)  # dog_bark, siren, jackhammer, street_music
    now = time.time()
    folder = ClipFolder(tmp_path / "clips", max_bytes=10**9, keep_days=2)
    folder.open()
    made = []
    for age, (n, event) in enumerate(
        [(0, events[0]), (1, events[0]), (2, events[0]), (0, events[1]), (1, events[1])]
    ):
        clone = type(event)(**{**event.__dict__, "id": f"{event.label}{n}"})
        write_clip(folder, clone, 1.0, now - 3600 * (10 - age))
        made.append(clone.id)
    mine = folder.folder / "birds.flac"  # a recording of the user's, put there: never touched
    sf.write(mine, np.zeros(160_000, np.float32), 16000)
    os.utime(mine, (now - 400 * 86_400, now - 400 * 86_400))
    old = type(events[2])(**{**events[2].__dict__, "id": "jackhammer-old"})
    write_clip(folder, old, 1.0, now - 3 * 86_400)
    assert folder.prune() == 1 and not (folder.folder / "jackhammer-old.flac").exists()
    size = (folder.folder / "dog_bark0.flac").stat().st_size
    folder.max_bytes = 3 * size + size // 2  # room for three of the five
    assert folder.prune() == 2
    kept = sorted(p.stem for p in folder.folder.glob("*.flac"))
    assert kept == ["birds", "dog_bark2", "siren0", "siren1"]  # the two oldest barks first


def test_whole_clips_only_and_never_on_a_nearly_full_disk(history, tmp_path, monkeypatch):
    event = read_events(history)[0]
    root = tmp_path / "clips"
    root.mkdir()
    (root / f".writing-{event.id}.flac").write_bytes(b"cut short by a kill")
    said: list[str] = []
    folder = ClipFolder(root, notify=said.append)
    folder.open()
    assert list(root.iterdir()) == []  # the leftover of a killed write is gone
    free = shutil.disk_usage(root).free
    monkeypatch.setattr(clips_module, "DISK_FREE_BYTES", free + 2**30)  # this disk is "full"
    for _ in range(3):
        folder.write(event, np.zeros(16000, np.float32), 16000)
    assert list(root.iterdir()) == [] and len(said) == 1 and "nearly full" in said[0]
    monkeypatch.setattr(clips_module, "DISK_FREE_BYTES", 0)
    folder.write(event, np.zeros(16000, np.float32), 16000)
    assert [p.name for p in root.iterdir()] == [f"{event.id}.flac"]
    assert "saving event clips again" in said[-1]


def test_a_clips_path_that_is_a_file_is_refused(tmp_path, sequence):
    (tmp_path / "history.clips").write_text("someone's file")
    with pytest.raises(EdgeAscError, match="is a file"):
        ClipFolder(tmp_path / "history.clips").open()
    run = edge_asc(
        "listen", "--from-file", str(sequence), "--fast", "--display", "none",
        "--db", str(tmp_path / "history.db"), "--clips",
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "is a file" in run.stderr
    assert (tmp_path / "history.clips").read_text() == "someone's file"
    run = edge_asc("listen", "--from-file", str(sequence), "--clips-max-mb", "5")
    assert run.returncode == 2 and "apply to --clips only" in run.stderr
