"""`edge-asc listen` end to end, as a subprocess, through a real PulseAudio server
(docs/architecture.md, section 5).

A PulseAudio null sink's monitor is the microphone; `paplay` plays real UrbanSound8K clips into
it, one after another, each padded with digital silence. The listener's JSON Lines log is then
cut into the played segments by level (windows of pure silence are at the dBFS floor), and each
segment's majority label must be what `edge-asc classify` says of that clip offline. SIGTERM must
end the listener with exit 0 and a whole last line.

Also here, without an audio server: replay with --from-file --fast and raw PCM on --stdin give
the offline window probabilities; no microphone and no PortAudio give one-line errors; the demo
runs; SIGTERM works on the stdin path.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from listener import EDGE_ASC, Listener, edge_asc, read_log
from pulse_server import SINK_16K, SINK_48K, PulseServer, require_pulseaudio

from edge_asc.api import Classifier
from edge_asc.audio_io import read_audio

SOUND_DBFS = -90.0  # above this a window holds some of a clip; the silence floor is -120
LEAD_SILENCE, TAIL_SILENCE = 0.5, 2.0  # seconds around each played clip
CANDIDATES_PER_CLASS = 6
SEARCH_FRAMES = 2  # a live window's offset is looked for this far either side of a guess
# dB between a matched window's logged level and the played samples' there: the log's 2 decimals;
# 48 kHz: the resamplers trim the top of the band (measured: 0.40 dB at most; 6 dB off fails)
LEVEL_16K, LEVEL_48K = 0.01, 1.0


def probability_rows(records: list[dict], labels: list[str]) -> np.ndarray:
    return np.array([[rec["top_k"][label] for label in labels] for rec in records])


# --- the clips: real, of different classes, that the model classifies steadily ---------------


@dataclass(frozen=True)
class Clip:
    path: Path
    true_class: str
    label: str  # what the model says offline
    steadiness: float  # share of 0.1-s-shifted windows whose top class is `label`
    margin: float  # mean lead of `label` over the runner-up in those windows


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="module")
def clips(shared_data, classifier) -> list[Clip]:
    """Three fold-3 clips of different classes whose windows agree with their clip label
    whatever the window offset, so a capture's arbitrary alignment cannot flip a majority.
    Chosen by the model in use, so the test holds when the default model is replaced."""
    root = shared_data / "urbansound8k-16k"
    with open(root / "meta.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["fold"] == "3"]
    by_class: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["filename"]):
        by_class.setdefault(row["class"], []).append(row)
    scored = []
    for cls, group in sorted(by_class.items()):
        for row in group[:CANDIDATES_PER_CLASS]:
            signal = read_audio(root / row["filename"], 16000)
            label = classifier.classify_array(signal, 16000).label
            shifted = classifier.window_probabilities(signal, hop_seconds=0.1)
            top = shifted.argmax(axis=1)
            steadiness = float(np.mean(top == classifier.labels.index(label)))
            ranked = np.sort(shifted, axis=1)
            margin = float(np.mean(ranked[:, -1] - ranked[:, -2]))
            quiet = min(
                10 * np.log10(np.mean(signal[i : i + 16000] ** 2) + 1e-20)
                for i in range(0, signal.size - 16000 + 1, 8000)
            )
            if quiet > SOUND_DBFS + 30:  # every second clearly above the silence threshold
                scored.append(Clip(root / row["filename"], cls, label, steadiness, margin))
    # Steady and clearly ahead: a server's resampling (48 kHz path) nudges the probabilities, and
    # a clip whose windows are near a tie could then flip its majority without any fault of ours.
    scored.sort(key=lambda c: (-c.steadiness, -c.margin))
    chosen: list[Clip] = []
    for distinct_labels in (True, False):  # prefer clips the model tells apart
        for clip in scored:
            if len(chosen) == 3:
                break
            if clip in chosen or clip.true_class in {c.true_class for c in chosen}:
                continue
            if distinct_labels and clip.label in {c.label for c in chosen}:
                continue
            chosen.append(clip)
    assert len(chosen) == 3
    assert min(c.steadiness for c in chosen) >= 0.8, chosen
    return chosen


# --- the audio server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulse(tmp_path_factory) -> Iterator[PulseServer]:
    """A private PulseAudio daemon with two null sinks: 16 kHz mono and 48 kHz stereo."""
    require_pulseaudio()
    server = PulseServer(tmp_path_factory.mktemp("pulse"), [SINK_16K, SINK_48K], "virtmic.monitor")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def padded(clip: Clip, folder: Path) -> Path:
    """The clip between stretches of digital silence, as the WAV that paplay plays."""
    data, rate = sf.read(clip.path, dtype="int16")
    lead = np.zeros(round(LEAD_SILENCE * rate), np.int16)
    tail = np.zeros(round(TAIL_SILENCE * rate), np.int16)
    out = folder / f"{clip.path.stem}.wav"
    sf.write(out, np.concatenate([lead, data, tail]), rate, subtype="PCM_16")
    return out


def segments(records: list[dict]) -> list[list[dict]]:
    """Runs of consecutive windows holding sound, separated by windows of pure silence."""
    runs: list[list[dict]] = []
    previous_loud = False
    for rec in records:
        loud = rec["dbfs"] > SOUND_DBFS
        if loud and not previous_loud:
            runs.append([])
        if loud:
            runs[-1].append(rec)
        previous_loud = loud
    return runs


def interior(run: Sequence) -> Sequence:
    """Drop the two windows at each end that straddle the silence (a window spans ~1.04 s and
    windows start every 0.5 s), keeping those wholly inside the clip."""
    return run[2:-2]


def listen_through_server(
    pulse: PulseServer, clips: list[Clip], tmp_path: Path, source: str, sink: str, *args: str
) -> tuple[list[dict], Listener, Path]:
    assert pulse.pactl("set-default-source", source).returncode == 0
    log = tmp_path / "out.jsonl"
    # The daemon is already up, so PortAudio (imported by the listener) sees it.
    args = ("listen", "--log", str(log), "--top-k", "10", *args)
    listener = Listener(tmp_path, *args, env=pulse.env)
    try:
        listener.wait_for(lambda: len(read_log(log)) >= 2, 120, "the first windows of silence")
        for clip in clips:
            pulse.play(padded(clip, tmp_path), sink)

        def settled() -> bool:
            recs = read_log(log)
            loud = [i for i, r in enumerate(recs) if r["dbfs"] > SOUND_DBFS]
            return bool(loud) and len(recs) - 1 - loud[-1] >= 2  # silence after the last clip

        listener.wait_for(settled, 30, "the last clip to be heard")
        listener.stop(signal.SIGTERM, timeout=20)
    finally:
        listener.kill()
    return read_log(log), listener, log


def check_segments(records: list[dict], clips: list[Clip]) -> list[list[dict]]:
    """Each clip heard as one run of loud windows, labelled as offline; the runs, in order."""
    offline = edge_asc("classify", "--json", *[str(c.path) for c in clips])
    assert offline.returncode == 0, offline.stderr
    expected = [json.loads(line)["label"] for line in offline.stdout.splitlines()]
    assert expected == [c.label for c in clips]
    runs = segments(records)
    assert len(runs) == len(clips), [len(r) for r in runs]
    inner = [interior(run) for run in runs]
    for run, clip in zip(inner, clips, strict=True):
        assert len(run) >= 4, f"{clip.path.name}: only {len(run)} windows inside the clip"
        majority, _ = Counter(rec["label"] for rec in run).most_common(1)[0]
        assert majority == clip.label, (clip, [rec["label"] for rec in run])
    return runs


def check_clean_stop(listener: Listener, log: Path) -> None:
    stderr = listener.stderr
    assert listener.proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    text = log.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line whole
    assert all(isinstance(rec["overflows"], int) for rec in records)
    assert "stopped" in stderr.splitlines()[-1]
    # stdout is a pipe, not a terminal: one plain line per window
    assert len(listener.stdout.splitlines()) == len(records)


def offline_windows(
    classifier: Classifier, signal: np.ndarray, first: int, count: int
) -> np.ndarray:
    """Probabilities of the `count` offline windows of `signal` that start at samples `first`,
    `first + hop`, ...: each from the signal's own samples, no frame on a zero pad (the window
    before `first`, on the piece's leading pad, and the one after the last, on its trailing pad,
    are left out)."""
    hop = classifier.card.frontend.hop_length
    assert first >= hop >= classifier.card.frontend.win_length // 2
    piece = signal[first - hop : first + (count + classifier.card.window_frames - 1) * hop]
    per_frame = hop / classifier.card.frontend.sample_rate
    return classifier.window_probabilities(piece, hop_seconds=per_frame)[1 : count + 1]


def levels(classifier: Classifier, signal: np.ndarray) -> np.ndarray:
    """The dBFS of the window at every sample offset of `signal`, measured as the live stream
    measures the `dbfs` it logs: over the second of samples that the window's frames centre on."""
    span = (classifier.card.window_frames - 1) * classifier.card.frontend.hop_length
    energy = np.concatenate(([0.0], np.cumsum(np.square(signal, dtype=np.float64))))
    return 10 * np.log10(np.maximum((energy[span:] - energy[:-span]) / span, 1e-12))


def samples_between(run: list[dict], i: int, j: int, rate: int) -> int:
    """How far apart the log puts windows i and j of the run, in samples."""
    return round((run[j]["offset_s"] - run[i]["offset_s"]) * rate)


def locate(level: np.ndarray, run: list[dict], rate: int) -> int:
    """The sample offset of the run's first window: where the levels of the played signal's
    windows, spaced as the log's offsets are, come closest to the logged ones."""
    steps = [samples_between(run, 0, k, rate) for k in range(len(run))]
    n = level.size - steps[-1]
    misfit = sum(
        (level[step : step + n] - rec["dbfs"]) ** 2 for step, rec in zip(steps, run, strict=True)
    )
    return int(np.argmin(misfit))


def best_offset(
    classifier: Classifier, signal: np.ndarray, row: np.ndarray, guess: int
) -> tuple[int, float]:
    """The sample offset, within SEARCH_FRAMES frames of `guess`, of the offline window closest
    to the live window `row`, and the largest probability difference between the two."""
    hop = classifier.card.frontend.hop_length
    base = max(hop, guess - SEARCH_FRAMES * hop)
    best, least = base, np.inf
    for shift in range(hop):  # each shift gives the windows at every frame from base + shift
        near = offline_windows(classifier, signal, base + shift, 2 * SEARCH_FRAMES)
        gaps = np.abs(near - row).max(axis=1)
        j = int(gaps.argmin())
        if gaps[j] < least:
            best, least = base + shift + j * hop, float(gaps[j])
    return best, least


@dataclass(frozen=True)
class Match:
    distance: float  # largest probability difference from the offline window at `offset`
    offset: int  # the sample of the played signal where the live window was found


def match_windows(
    classifier: Classifier, signal: np.ndarray, level: np.ndarray, run: list[dict], tol: float
) -> list[Match]:
    """Each live window of `run`, matched to the offline window of `signal` (what was played)
    at its own sample offset.

    A capture starts at an arbitrary sample of the played signal, and a sub-frame shift changes
    every frame of a window: it moves the probabilities more than a whole frame's shift does (on
    107228-5-0-0 with the 5x5 model: up to 0.049, against 0.010 between neighbouring frames). A
    loaded server also slips now and then, dropping or repeating samples, which moves the clip's
    later windows to another offset (a capture once missed 0.01 by 0.0155 when they were all
    compared on the first window's grid). So the first window is looked for where the logged
    levels (dBFS of the captured samples themselves) fit the played signal's, and each later one
    where the previous one and the log's hop put it. The first window, and a later one not within
    `tol` where it was put, is searched for to the sample within SEARCH_FRAMES frames of there: a
    level fit is only near, and a slip moves a window that far at most.
    """
    rate = classifier.card.frontend.sample_rate
    offset = locate(level, run, rate)
    matches: list[Match] = []
    for i, row in enumerate(probability_rows(run, classifier.labels)):
        if i:
            offset += samples_between(run, i - 1, i, rate)
        distance = float(np.abs(offline_windows(classifier, signal, offset, 1)[0] - row).max())
        if i == 0 or distance > tol:
            found, gap = best_offset(classifier, signal, row, offset)
            if gap < distance:
                offset, distance = found, gap
        matches.append(Match(distance, offset))
    return matches


def assert_close_to_offline(
    classifier: Classifier,
    clips: list[Clip],
    runs: list[list[dict]],
    tolerance: float,
    level_tolerance: float,
) -> None:
    """Every window inside a clip within `tolerance` of the offline window at its own offset,
    with its logged level within `level_tolerance` dB of the played samples' there (a gain error
    shows in the level even where the probabilities hardly move).

    Windows a slip falls inside are no window of the clip at any offset: at most three may miss
    (a sample lies in two or three windows), and only where matched windows on either side of
    them (the windows straddling the clip's ends count here) were moved apart by the slip.
    """
    rate = classifier.card.frontend.sample_rate
    misses: list[tuple[str, int, float]] = []
    for clip, run in zip(clips, runs, strict=True):
        # the played signal as `padded` writes it, after a second of the server's own silence: the
        # first loud window can start before the file does (a window spans ~1.04 s)
        lead = np.zeros(round((1 + LEAD_SILENCE) * rate), np.float32)
        tail = np.zeros(round(TAIL_SILENCE * rate), np.float32)
        signal = np.concatenate([lead, read_audio(clip.path, rate), tail])
        level = levels(classifier, signal)
        matches = match_windows(classifier, signal, level, run, tolerance)
        good = [i for i, m in enumerate(matches) if m.distance <= tolerance]
        inside = interior(range(len(run)))
        for i in set(good) & set(inside):
            drift = abs(level[matches[i].offset] - run[i]["dbfs"])
            assert drift <= level_tolerance, (clip.path.name, i, "level", drift)
        for m in sorted(set(inside) - set(good)):
            before, after = [i for i in good if i < m], [j for j in good if j > m]
            assert before and after, (clip.path.name, m, "missed at an end", matches[m])
            i, j = before[-1], after[0]
            moved = matches[j].offset - matches[i].offset != samples_between(run, i, j, rate)
            assert moved, (clip.path.name, m, "missed with no slip around it", matches[m])
            misses.append((clip.path.name, m, round(matches[m].distance, 4)))
    assert len(misses) <= 3, misses


def test_listen_through_pulseaudio_16k(pulse, clips, classifier, tmp_path):
    records, listener, log = listen_through_server(
        pulse, clips, tmp_path, "virtmic.monitor", "virtmic", "--display", "plain"
    )
    check_clean_stop(listener, log)
    runs = check_segments(records, clips)
    # 16-bit clips into a 16 kHz s16 sink: the captured samples are the clip's own, so at its
    # own offset each window is the offline one, to the log's 6 decimals (measured: 5e-7 at most).
    # Hence 1e-4, not a looser bound: on some clips a window 300 samples off its offset stays
    # within 0.01 of the offline one, so only an exact match pins the offset (match_windows).
    assert_close_to_offline(classifier, clips, runs, 1e-4, LEVEL_16K)


def test_listen_through_pulseaudio_48k_stereo(pulse, clips, classifier, tmp_path):
    """The server upmixes and resamples each 16 kHz clip to 48 kHz stereo (its own resampler);
    the listener captures 48 kHz stereo, downmixes and resamples back with soxr. The samples
    are no longer the clip's, so the windows are not bit-identical: the labels must agree
    segment by segment, and each window's probabilities lie within 0.04 of the offline window at
    its own offset. What remains is the grid's offset of a third of a 16-kHz sample (a 48-kHz
    capture can start between two 16-kHz samples) and the resamplers' ripple: measured 0.021 at
    most (138473-9-0-29), where shifting a clip by a third of a sample offline moves its windows
    by up to 0.020 (165039-7-0-0); a 6-dB gain error in the downmix would move them by 0.05."""
    records, listener, log = listen_through_server(
        pulse,
        clips,
        tmp_path,
        "virtmic48.monitor",
        "virtmic48",
        "--rate",
        "48000",
        "--channels",
        "2",
        "--display",
        "plain",
    )
    check_clean_stop(listener, log)
    runs = check_segments(records, clips)
    assert_close_to_offline(classifier, clips, runs, 0.04, LEVEL_48K)


def test_devices_lists_the_server(pulse):
    listed = edge_asc("devices", env=pulse.env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("default" in line and " ch, " in line and " Hz)" in line for line in lines)
    assert any(line.startswith("*") for line in lines)  # the default device is marked


def test_listen_by_device_name_at_an_odd_rate(pulse, tmp_path):
    """--device by name substring, a capture rate the model does not use (resampled)."""
    assert pulse.pactl("set-default-source", "virtmic.monitor").returncode == 0
    log = tmp_path / "out.jsonl"
    args = ("listen", "--device", "defau", "--rate", "44100", "--log", str(log))
    listener = Listener(tmp_path, *args, env=pulse.env)
    try:
        listener.wait_for(lambda: len(read_log(log)) >= 3, 120, "three windows")
        code = listener.stop(signal.SIGINT, timeout=20)
    finally:
        listener.kill()
    assert code == 0, listener.stderr
    assert "44100 Hz" in listener.stderr  # the source description names the capture rate
    assert log.read_text().endswith("\n")


# --- the same pipeline without an audio server ------------------------------------------------


@pytest.fixture
def us8k_clip(shared_data) -> Path:
    return shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"


def test_from_file_fast_and_stdin_equal_offline(classifier, us8k_clip, tmp_path):
    offline = classifier.window_probabilities(read_audio(us8k_clip, 16000))
    replay_log, stdin_log = tmp_path / "replay.jsonl", tmp_path / "stdin.jsonl"
    common = ["--top-k", "10", "--display", "none"]
    replay = edge_asc(
        "listen", "--from-file", str(us8k_clip), "--fast", "--log", str(replay_log), *common
    )
    assert replay.returncode == 0, replay.stderr
    pcm = sf.read(us8k_clip, dtype="int16")[0].tobytes()
    piped = subprocess.run(
        [*EDGE_ASC, "listen", "--stdin", "--rate", "16000", "--log", str(stdin_log), *common],
        input=pcm,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    for log in (replay_log, stdin_log):
        got = probability_rows(read_log(log), classifier.labels)
        assert got.shape == offline.shape
        np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)


def test_48k_stereo_24_bit_file_and_stdin_equal_offline(classifier, shared_data, tmp_path):
    path = shared_data / "tut-urban-2018-demo" / "street_traffic.flac"
    offline = classifier.window_probabilities(read_audio(path, 16000))
    data = sf.read(path, dtype="int32")[0]
    packed = (data >> 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    args = ["--rate", "48000", "--channels", "2", "--format", "S24_3LE", "--top-k", "10"]
    piped = subprocess.run(
        [*EDGE_ASC, "listen", "--stdin", *args, "--log", str(tmp_path / "s.jsonl")],
        input=packed,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    got = probability_rows(read_log(tmp_path / "s.jsonl"), classifier.labels)
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)


def test_sigterm_on_stdin_stops_cleanly(us8k_clip, tmp_path):
    """The writer stays silent but open: SIGTERM must still end the listener, exit 0."""
    log = tmp_path / "out.jsonl"
    args = ("listen", "--stdin", "--rate", "16000", "--log", str(log), "--display", "plain")
    listener = Listener(tmp_path, *args, stdin=subprocess.PIPE)
    try:
        assert listener.proc.stdin is not None
        listener.proc.stdin.write(sf.read(us8k_clip, dtype="int16")[0].tobytes())
        listener.proc.stdin.flush()
        # Six windows: the seventh needs the end of the stream (the offline trailing pad).
        listener.wait_for(lambda: len(read_log(log)) >= 6, 120, "the clip's first six windows")
        code = listener.stop(signal.SIGTERM, timeout=20)  # stdin still open: no end to stop at
    finally:
        listener.kill()
    assert code == 0, listener.stderr
    assert log.read_text().endswith("\n") and len(read_log(log)) == 6
    assert len(listener.stdout.splitlines()) == 6
    assert listener.stderr.splitlines()[-1].startswith("edge-asc: stopped: 6 windows")


def test_sighup_reopens_the_log_for_logrotate(us8k_clip, tmp_path):
    """logrotate renames the file, then `systemctl reload` sends SIGHUP: new lines go to a new
    file at the same path, the renamed one keeps complete lines, and the listener goes on."""
    log = tmp_path / "out.jsonl"
    args = ("listen", "--stdin", "--rate", "16000", "--log", str(log), "--display", "none")
    listener = Listener(tmp_path, *args, stdin=subprocess.PIPE)
    pcm = sf.read(us8k_clip, dtype="int16")[0].tobytes()
    try:
        assert listener.proc.stdin is not None
        listener.proc.stdin.write(pcm)
        listener.proc.stdin.flush()
        listener.wait_for(lambda: len(read_log(log)) >= 6, 120, "the first clip's windows")
        rotated = log.rename(tmp_path / "out.jsonl.1")
        listener.proc.send_signal(signal.SIGHUP)
        listener.proc.stdin.write(pcm)
        listener.proc.stdin.flush()
        listener.wait_for(lambda: len(read_log(log)) >= 6, 120, "windows in the reopened log")
        assert listener.proc.poll() is None
        code = listener.stop(signal.SIGTERM, timeout=20)
    finally:
        listener.kill()
    assert code == 0, listener.stderr
    assert len(read_log(rotated)) == 6 and rotated.read_text().endswith("\n")
    assert len(read_log(log)) >= 6 and log.read_text().endswith("\n")


def no_server_env(tmp_path: Path) -> dict[str, str]:
    """No sound server reachable (and none autospawned): what a headless box without a mic has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(XDG_RUNTIME_DIR=str(tmp_path), HOME=str(tmp_path))
    env["PULSE_SERVER"] = f"unix:{tmp_path}/no-such-socket"
    return env


def test_no_microphone_is_one_line_pointing_to_devices(tmp_path):
    env = no_server_env(tmp_path)
    if edge_asc("devices", env=env).returncode == 0:
        pytest.skip("this machine has an input device even without a sound server")
    result = edge_asc("listen", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-asc: ")
    assert "edge-asc devices" in lines[0]


def test_no_portaudio_library(tmp_path, us8k_clip):
    """With no PortAudio, the microphone fails in one line and the file path still works."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]),
    }
    for args in (["listen"], ["devices"]):
        result = edge_asc(*args, env=env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "PortAudio library not found" in lines[0], lines
    replay = edge_asc("listen", "--from-file", str(us8k_clip), "--fast", env=env)
    assert replay.returncode == 0, replay.stderr
    assert len(replay.stdout.splitlines()) == 7


def attribution_rows() -> list[tuple[float, float, str]]:
    """The demo's clips as its ATTRIBUTION.md table gives them (read here independently)."""
    from edge_asc.cli import sample

    rows = []
    for line in sample("ATTRIBUTION.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and "-" in cells[0] and cells[0].replace("-", "").isdigit():
            start, end = cells[0].split("-")
            rows.append((float(start), float(end), cells[1]))
    return rows


def test_demo_fast_runs_without_a_microphone(tmp_path):
    log = tmp_path / "demo.jsonl"
    result = edge_asc("demo", "--fast", "--log", str(log), env=no_server_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(read_log(log)) == 31  # 16 s, 0.5-s hop
    assert "done: 31 windows, 16.0 s of audio, 0 overflows" in result.stderr


def test_demo_says_what_is_playing_and_how_many_it_got_right(tmp_path):
    """Each window next to the class of the clip it lies in, right or wrong, and a tally."""
    rows = attribution_rows()
    assert [label for _, _, label in rows] == [
        "children_playing",
        "dog_bark",
        "siren",
        "jackhammer",
    ]
    log = tmp_path / "demo.jsonl"
    args = ["demo", "--fast", "--display", "plain", "--log", str(log)]
    result = edge_asc(*args, env=no_server_env(tmp_path))
    assert result.returncode == 0, result.stderr
    right = scored = 0
    for line, rec in zip(result.stdout.splitlines(), read_log(log), strict=True):
        start, end = rec["offset_s"], rec["offset_s"] + 1.0
        playing = [label for a, b, label in rows if a < end and start < b]
        if len(playing) == 2:
            assert f"playing {playing[0]} + {playing[1]} (a join: not scored)" in line
            continue
        scored += 1
        right += rec["label"] == playing[0]
        verdict = "right" if rec["label"] == playing[0] else "wrong"
        assert line.endswith(f"playing {playing[0]}: {verdict} ({right}/{scored} right so far)")
    assert scored == 28  # 31 windows, 3 across the joins at 4, 8 and 12 s
    tally = f"demo: {right} of 28 windows right ({100 * right / 28:.0f} %)"
    assert result.stderr.splitlines()[-1].startswith(f"edge-asc: {tally}")
    silent = edge_asc("demo", "--fast", "--display", "none", env=no_server_env(tmp_path))
    assert silent.stdout == "" and tally in silent.stderr.splitlines()[-1]


def test_demo_panel_shows_what_is_playing():
    """The rich panel (a person at a terminal) carries the same note as the plain line."""
    from rich.console import Console

    from edge_asc.cli import sample
    from edge_asc.live import DemoScore, RichDisplay, Segment
    from edge_asc.model import Model
    from edge_asc.sources import FileSource
    from edge_asc.stream import LiveStream

    score = DemoScore([Segment(0, 4, "children_playing")], 1.0)
    console = Console(record=True, width=100)
    display = RichDisplay(console=console, annotate=score.note)
    with FileSource(sample("demo.flac"), realtime=False) as source:
        pred = next(iter(LiveStream(source, Model()).predictions()))
    score.record(pred)
    console.print(display.render(pred))
    note = score.note(pred)
    assert note.startswith("playing children_playing: ") and note in console.export_text()


@pytest.mark.parametrize("display", ["none", "plain"])
def test_the_start_line_reaches_stderr_whatever_the_display(display, us8k_clip):
    """--display none is the service's setting: the journal must still say what is heard."""
    result = edge_asc("listen", "--from-file", str(us8k_clip), "--fast", "--display", display)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    starts = [line for line in lines if line.startswith("edge-asc: listening to ")]
    assert starts == [lines[0]]
    assert f"{us8k_clip.name} (fast) with edge-asc-ensemble@" in lines[0]
    assert (result.stdout == "") == (display == "none")


def test_user_errors_are_one_line(us8k_clip):
    for args in (
        ["listen", "--fast"],
        ["listen", "--from-file", str(us8k_clip), "--stdin"],
        ["listen", "--stdin", "--rate", "16000", "--format", "mp3"],
        ["listen", "--from-file", str(us8k_clip), "--smoothing", "median"],
        ["listen", "--from-file", "missing.wav"],
    ):
        result = edge_asc(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
