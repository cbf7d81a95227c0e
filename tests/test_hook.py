"""`listen --on-event COMMAND` on real shared clips replayed through `listen`: one JSON event per
detection, in order, one command at a time; a hanging command killed at its timeout while the
audio path goes on; a failing command said once and never fatal; the bounded queue, the cooldown
and the minimum confidence with real commands."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from listener import Listener, edge_asc, read_log
from replay import SEQUENCE, join_clips, predictions

from edge_asc.events import Event
from edge_asc.history import read_events
from edge_asc.hook import EventHook, HookOptions

LABELS = [label for _, label in SEQUENCE]
PY = shlex.quote(sys.executable)

# Reads the event, holds a lock file while it "works" (O_EXCL: a second command running at the
# same time fails), then appends the event to argv[1].
RECORD = """
import json, os, sys, time
event = json.loads(sys.stdin.read())
out = sys.argv[1]
lock = os.open(out + '.lock', os.O_CREAT | os.O_EXCL | os.O_WRONLY)
time.sleep(0.3)
with open(out, 'a') as f:
    f.write(json.dumps(event) + '\\n')
os.close(lock)
os.unlink(out + '.lock')
"""


@pytest.fixture(scope="module")
def sequence(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hook") / "sequence.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE], path)
    return path


@pytest.fixture(scope="module")
def windows(sequence) -> int:
    """How many windows `listen --from-file SEQUENCE --fast` logs."""
    return len(predictions(sequence))


def listen_args(sequence: Path, tmp_path: Path) -> list[str]:
    return [
        "listen", "--from-file", str(sequence), "--fast", "--display", "none",
        "--db", str(tmp_path / "h.db"), "--log", str(tmp_path / "log.jsonl"),
    ]  # fmt: skip


def test_each_detection_reaches_the_command_as_json_in_order_one_at_a_time(
    sequence, windows, tmp_path
):
    out = tmp_path / "events.jsonl"
    command = f"{PY} -c {shlex.quote(RECORD)} {shlex.quote(str(out))}"
    run = edge_asc(*listen_args(sequence, tmp_path), "--on-event", command)
    assert run.returncode == 0, run.stderr
    assert "on-event" not in run.stderr  # no failure: never two commands at once (the lock)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    stored = read_events(tmp_path / "h.db")
    assert [e["label"] for e in got] == LABELS  # the clips' classes, in the order played
    assert [e["id"] for e in got] == [e.id for e in stored]  # the same events as the history
    for event, kept in zip(got, stored, strict=True):
        assert event["type"] == "start"
        assert event["start"] == kept.to_dict()["start"]
        assert 0 < event["peak_confidence"] <= kept.peak_confidence + 1e-6
    assert len(read_log(tmp_path / "log.jsonl")) == windows
    assert not (tmp_path / "events.jsonl.lock").exists()


def test_a_hanging_command_is_killed_at_its_timeout_and_the_audio_goes_on(
    sequence, windows, tmp_path
):
    timeout = 6.0
    pids = tmp_path / "pids"
    hang = f"echo $$ >> {shlex.quote(str(pids))}; exec sleep 600"
    began = time.monotonic()
    listener = Listener(
        tmp_path, *listen_args(sequence, tmp_path),
        "--on-event", hang, "--on-event-timeout", str(timeout),
    )  # fmt: skip
    log = tmp_path / "log.jsonl"
    try:
        listener.wait_for(lambda: pids.exists() and pids.read_text(), 60, "the first command")
        first_command = time.monotonic()
        listener.wait_for(lambda: len(read_log(log)) == windows, 60, "every window logged")
        logged = time.monotonic()
        code = listener.wait(timeout=120)
    finally:
        listener.kill()
    ended = time.monotonic()
    assert code == 0, listener.stderr
    # Every window was logged while the first command still hung: the audio path never waited.
    assert logged - first_command < timeout
    # Five events, each command hanging: waited one by one that would be 5 timeouts at least.
    # The listener ended within about one timeout of the stream's end instead.
    assert ended - began < 2 * timeout + 20
    assert ended - began < 5 * timeout
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed (and reaped), not left behind
    err = listener.stderr
    assert err.count(f"still running after {timeout:g} s, killed") == 1, err
    assert err.count("the --on-event command failed") == 1, err
    assert "events not passed to the --on-event command: the listener stopped" in err
    assert f"done: {windows} windows" in err
    assert [e.label for e in read_events(tmp_path / "h.db")] == LABELS  # nothing lost


def test_a_failing_command_is_said_once_and_is_not_fatal(sequence, windows, tmp_path):
    """From the config file: it fails for the first two events, then works."""
    count = shlex.quote(str(tmp_path / "count"))
    command = (
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; "
        f'[ "$n" -ge 2 ] || {{ echo "no mail server" >&2; exit 3; }}'
    )
    config = tmp_path / "config.toml"
    config.write_text(f"[listen]\non-event = '''{command}'''\n")
    run = edge_asc(*listen_args(sequence, tmp_path), "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "count").read_text().strip() == "5"  # run for every event
    lines = [line for line in run.stderr.splitlines() if "on-event" in line]
    assert len(lines) == 2, run.stderr
    assert "failed (exit status 3: no mail server)" in lines[0]
    assert "works again (2 failed before)" in lines[1]
    assert "Traceback" not in run.stderr
    assert [e.label for e in read_events(tmp_path / "h.db")] == LABELS
    assert len(read_log(tmp_path / "log.jsonl")) == windows


def event(label: str, at: float, peak: float = 0.9) -> Event:
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    return Event(f"{label}-{at}", label, moment, moment, 2.0, peak, peak, 3, -20.0, "m", at)


def test_the_queue_is_bounded_and_the_policy_applies(tmp_path):
    """Real commands, events made by hand: a slow command, six events at once (two wait, three
    are dropped, said once); a class within its cooldown and a weak event are not passed on."""
    out = tmp_path / "labels"
    command = f"{PY} -c 'import json,sys; print(json.load(sys.stdin)[\"label\"])' >> {out}"
    said: list[str] = []
    hook = EventHook(
        HookOptions(f"sleep 0.5; {command}", timeout_s=10, cooldown_s=30, min_confidence=0.5),
        min_duration_s=1.5,
        notify=said.append,
        max_pending=2,
    )
    try:
        hook.window(None, [], event("dog_bark", 0.0))  # runs at once
        hook.window(None, [], event("dog_bark", 10.0))  # within dog_bark's cooldown: not passed
        hook.window(None, [], event("siren", 10.0, peak=0.4))  # under the minimum confidence
        time.sleep(0.2)  # the first is running
        for i, label in enumerate(["siren", "drilling", "jackhammer", "gun_shot", "children"]):
            hook.window(None, [], event(label, 20.0 + i))
    finally:
        hook.close()
    assert out.read_text().split() == ["dog_bark", "siren", "drilling"]
    assert said == [
        "the --on-event command is behind: 2 events wait for it; newer ones are dropped until "
        "it catches up",
        "the --on-event command caught up; 3 events were dropped",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--on-event-timeout", "3"], "--on-event-timeout applies to --on-event only"),
        (["--on-event", " "], "--on-event takes a command"),
        (["--on-event", "cat", "--on-event-timeout", "0"], "--on-event-timeout"),
    ],
)
def test_bad_hook_options_are_one_line(args, message, shared_data):
    clip = shared_data / "urbansound8k-16k" / "fold3" / f"{SEQUENCE[0][0]}.flac"
    result = edge_asc("listen", "--from-file", str(clip), "--fast", *args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
