"""The prediction log on a real disk, under a real listener: kill -9, rotation, a full disk.

- kill -9 twenty times, at random moments, a listener appending to one log: after each kill
  every complete line parses, nothing logged before is lost, and only the line in flight may be
  cut (the next run drops that torn tail instead of gluing its first record to it);
- rotation by size through `listen --log-max-mb/--log-keep`: whole lines, the retention cap;
- a file size limit (RLIMIT_FSIZE, what a full disk looks like to a writer: the write fails
  part way) under a running listener: said once, predictions go on, the held records are written
  in order once the limit is lifted, and no line is ever cut.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from listener import EDGE_ASC, Listener, edge_asc, read_log

RATE = 16000
KILLS = 20


@pytest.fixture(scope="module")
def pcm(shared_data) -> bytes:
    """A minute of real clips as raw S16_LE PCM, fed again and again to a listener's stdin."""
    root = shared_data / "urbansound8k-16k" / "fold3"
    clips = [sf.read(p, dtype="int16")[0] for p in sorted(root.glob("*.flac"))[:15]]
    return np.concatenate(clips).tobytes()


def feed(proc: subprocess.Popen, data: bytes, rounds: int) -> None:
    """Write `data` `rounds` times, then close stdin; stop quietly once the reader is gone."""
    assert proc.stdin is not None
    try:
        for _ in range(rounds):
            proc.stdin.write(data)
        proc.stdin.close()
    except OSError:  # killed: the pipe broke
        pass


def complete_lines(path: Path) -> tuple[list[dict], bytes]:
    """(every complete line, parsed; the bytes after the last newline)."""
    data = path.read_bytes() if path.exists() else b""
    cut = data.rfind(b"\n") + 1
    return [json.loads(line) for line in data[:cut].splitlines()], data[cut:]


def test_kill_9_at_random_moments_loses_at_most_the_line_in_flight(pcm, tmp_path):
    """A listener fed as fast as it reads, killed at a random moment: in start-up, in the
    torn-tail check of its log, or (mostly) while it writes records several times a second."""
    log = tmp_path / "out.jsonl"
    cmd = [
        *EDGE_ASC,
        "listen",
        "--stdin",
        "--rate",
        "16000",
        "--display",
        "none",
        "--log",
        str(log),
    ]
    cmd += ["--top-k", "10", "--log-max-mb", "1000"]
    rng = random.Random(5)
    kept: list[dict] = []
    appended_runs = torn = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        writer = threading.Thread(target=feed, args=(proc, pcm, 100), daemon=True)
        writer.start()
        time.sleep(rng.uniform(0.2, 3.0))
        proc.kill()
        _, stderr = proc.communicate(timeout=30)
        writer.join(timeout=30)
        assert proc.returncode == -signal.SIGKILL, stderr.decode()
        records, tail = complete_lines(log)  # every complete line parses
        assert records[: len(kept)] == kept  # nothing logged before is lost
        assert b"\n" not in tail  # at most one, last, cut line
        new = records[len(kept) :]
        offsets = [r["offset_s"] for r in new]
        assert offsets == [0.5 * i for i in range(len(new))]  # each run's records, in order
        appended_runs += bool(new)
        torn += bool(tail)
        kept = records
    assert appended_runs >= KILLS // 2, appended_runs  # most kills hit a listener mid-stream
    # A last run, to its end: any torn tail dropped, whole lines appended after the kept ones.
    done = subprocess.run(cmd, input=pcm[: 8 * RATE * 2], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records, tail = complete_lines(log)
    assert tail == b"" and records[: len(kept)] == kept and len(records) == len(kept) + 15
    print(f"{KILLS} kills: {appended_runs} mid-stream, {torn} left a cut last line")


def test_rotation_by_size_keeps_whole_lines_and_the_cap(tmp_path):
    """31 windows of the demo into a log rotated every ~2 KB, 2 old files kept."""
    log = tmp_path / "out.jsonl"
    result = edge_asc(
        "demo", "--fast", "--display", "none", "--log", str(log)
    )  # the default size: one file
    assert result.returncode == 0, result.stderr
    everything = read_log(log)
    log.unlink()
    args = ["--log", str(log), "--log-max-mb", "0.002", "--log-keep", "2", "--display", "none"]
    demo = edge_asc("listen", "--from-file", str(demo_path()), "--fast", *args)
    assert demo.returncode == 0, demo.stderr
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["out.jsonl", "out.jsonl.1", "out.jsonl.2"]
    limit = round(0.002 * 2**20)
    line = max(len(json.dumps(r, separators=(",", ":"))) + 1 for r in everything)
    for path in files:
        assert path.read_text().endswith("\n") and path.stat().st_size <= limit + line
    newest_first = [read_log(p) for p in (log, files[1], files[2])]
    kept = [r["offset_s"] for recs in reversed(newest_first) for r in recs]
    all_offsets = [r["offset_s"] for r in everything]
    assert kept == all_offsets[-len(kept) :]  # the newest windows, in order, none missing
    assert len(kept) < len(all_offsets)  # and the oldest rotated away


def demo_path() -> Path:
    from edge_asc.cli import demo_recording

    return demo_recording()


def limit_file_size(limit: int):
    """For preexec_fn: writes past `limit` bytes fail with EFBIG (SIGXFSZ ignored), as a write
    to a full disk fails with ENOSPC: part of the data may go, then the error."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def test_a_full_disk_is_said_once_and_the_log_catches_up(shared_data, tmp_path):
    clip = shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"
    pcm = sf.read(clip, dtype="int16")[0].tobytes()  # 4 s: six windows while streaming
    log = tmp_path / "out.jsonl"
    limit = 1000  # room for two or three records
    listener = Listener(
        tmp_path,
        "listen",
        "--stdin",
        "--rate",
        "16000",
        "--log",
        str(log),
        "--display",
        "plain",
        stdin=subprocess.PIPE,
        preexec_fn=limit_file_size(limit),
    )
    try:
        stdin = listener.proc.stdin
        assert stdin is not None

        def shown() -> int:
            return len(listener.stdout.splitlines())

        stdin.write(pcm)
        stdin.flush()
        listener.wait_stderr("cannot write the log")
        stdin.write(pcm * 2)  # eight seconds more: predictions go on, the log cannot take them
        stdin.flush()
        listener.wait_for(lambda: shown() >= 20, 60, "predictions while the disk is full")
        assert listener.stderr.count("cannot write") == 1  # once, not once per line
        assert log.stat().st_size <= limit and log.read_text().endswith("\n")  # never half a line
        stuck = len(read_log(log))

        resource.prlimit(listener.proc.pid, resource.RLIMIT_FSIZE, (-1, -1))  # space again
        stdin.write(pcm)
        stdin.flush()
        listener.wait_stderr("is writable again")
        stdin.close()
        code = listener.wait(timeout=60)
    finally:
        listener.kill()
    err = listener.stderr
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("cannot write the log") == 1 and err.count("is writable again") == 1
    records = read_log(log)
    assert log.read_text().endswith("\n")
    assert len(records) == shown() == 31  # 16 s: every window logged, none lost, in order
    assert [r["offset_s"] for r in records] == [0.5 * i for i in range(31)]
    assert stuck < 4
