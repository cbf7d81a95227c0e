"""The `edge-asc` command as a user runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import ctypes
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_asc.api import Classifier
from edge_asc.cli import open_source
from edge_asc.errors import EdgeAscError


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from edge_asc.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_classify_json_one_object_per_file(shared_data):
    files = [
        shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac",
        shared_data / "tut-urban-2018-demo" / "bus.flac",  # 48 kHz stereo 24-bit
    ]
    given = [str(f) for f in files]
    result = run("classify", "--json", *given)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    classifier = Classifier()
    for line, path in zip(lines, given, strict=True):
        obj = json.loads(line)
        assert obj["file"] == path
        assert set(obj["probabilities"]) == set(classifier.labels)
        assert abs(sum(obj["probabilities"].values()) - 1) < 1e-4
        offline = classifier.classify_file(path)
        # the CLI's label is the verdict: the best class, or "uncertain" below the threshold
        assert obj["label"] == offline.verdict
        best = max(obj["probabilities"], key=obj["probabilities"].get)
        assert best == offline.label
        assert np.isclose(obj["probabilities"][best], offline.probabilities[offline.label])


def test_classify_bad_file_is_one_line_and_exit_2(tmp_path, shared_data):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    good = shared_data / "tut-urban-2018-demo" / "park.flac"
    result = run("classify", "--json", str(bad), str(good), str(tmp_path / "missing.flac"))
    assert result.returncode == 2
    assert len(result.stdout.strip().splitlines()) == 1  # the good file is still classified
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("edge-asc: ") for e in errors)
    assert "Traceback" not in result.stderr


def test_missing_model_is_one_line(tmp_path, shared_data):
    result = run("classify", "-m", str(tmp_path / "none.onnx"), str(shared_data / "README.md"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"edge-asc: model not found: {tmp_path / 'none.onnx'}"
    ]


def test_info_prints_the_card():
    result = run("info")
    assert result.returncode == 0, result.stderr
    assert "air_conditioner" in result.stdout and "MACs" in result.stdout
    card = json.loads(run("info", "--json").stdout)
    assert card["format_version"] == 1 and len(card["labels"]) == 10


def _meta_naming_missing(tmp_path):
    root = tmp_path / "meta"
    root.mkdir()
    (root / "meta.csv").write_text("filename,fold,class\nfold1/a.flac,1,x\nfold2/b.flac,2,y\n")
    return root


def _unreadable_audio(tmp_path, shared_data):
    root = tmp_path / "folders"
    for label in ("dog", "siren"):
        (root / label).mkdir(parents=True)
        (root / label / "x.wav").write_bytes(b"definitely not audio" * 10)
    return root


@pytest.mark.parametrize("case", ["missing", "empty", "meta_missing_files", "unreadable"])
def test_train_bad_data_is_one_line_and_exit_2(case, tmp_path, shared_data):
    data = {
        "missing": lambda: tmp_path / "does-not-exist",
        "empty": lambda: (tmp_path / "empty").mkdir() or tmp_path / "empty",
        "meta_missing_files": lambda: _meta_naming_missing(tmp_path),
        "unreadable": lambda: _unreadable_audio(tmp_path, shared_data),
    }[case]()
    result = run("train", str(data), "--out", str(tmp_path / "run"), "--quick")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("edge-asc: ") and "Traceback" not in result.stderr
    assert str(data.name) in lines[-1] or "x.wav" in lines[-1]


@pytest.mark.parametrize("case", ["missing", "no_audio", "unreadable"])
def test_train_bad_backgrounds_is_one_line_and_exit_2(case, tmp_path, shared_data):
    scenes = tmp_path / "scenes"
    if case != "missing":
        scenes.mkdir()
        (scenes / "readme.txt").write_text("recorded on the balcony")
    if case == "unreadable":
        (scenes / "balcony.wav").write_bytes(b"definitely not audio" * 10)
    data = shared_data / "urbansound8k-16k"
    out = tmp_path / "run"
    result = run("train", str(data), "--out", str(out), "--quick", "--backgrounds", str(scenes))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("edge-asc: ") and "Traceback" not in result.stderr
    assert ("balcony.wav" if case == "unreadable" else "scenes") in lines[-1]
    assert not (out / "model.onnx").exists()


# --- bad input: one line on stderr, exit 2, nothing else ----------------------------------------


def main_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The console script's own entry point, in this process (a subprocess per case would
    cost a second of start-up each): (exit code, stdout, stderr)."""
    from edge_asc.cli import main

    monkeypatch.setattr(sys, "argv", ["edge-asc", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capsys.readouterr()
    return stopped.value.code, out, err


def assert_one_line_error(code: int, out: str, err: str, *expected: str, case: str = "") -> None:
    assert code == 2, (case, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-asc: "), (case, err)
    assert "Traceback" not in err and out == "", case
    for text in expected:
        assert text in lines[0], (case, text, lines[0])


def bad_models(folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken model files, each with the words its error must say."""
    import onnx

    from edge_asc.model import default_model_path
    from edge_asc.modelcard import METADATA_KEY

    good = default_model_path().read_bytes()
    folder.mkdir(exist_ok=True)
    files = {
        "missing": (folder / "none.onnx", None, "model not found"),
        "empty": (folder / "empty.onnx", b"", "cannot load model"),
        "corrupt": (folder / "corrupt.onnx", b"\x00not a model" * 50, "cannot load model"),
        "truncated": (folder / "truncated.onnx", good[: len(good) * 2 // 3], "cannot load model"),
    }
    out = {}
    for name, (path, data, words) in files.items():
        if data is not None:
            path.write_bytes(data)
        out[name] = (path, words)
    proto = onnx.load(str(default_model_path()))
    card = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    newer = json.loads(card.value)
    newer["format_version"] = 99
    card.value = json.dumps(newer)
    onnx.save(proto, str(folder / "newer.onnx"))
    out["newer format"] = (folder / "newer.onnx", "newer than this edge-asc reads")
    del proto.metadata_props[:]
    onnx.save(proto, str(folder / "no-card.onnx"))
    out["no metadata"] = (folder / "no-card.onnx", "not an edge-asc model")
    return out


MODEL_CASES = ["missing", "empty", "corrupt", "truncated", "newer format", "no metadata"]


@pytest.mark.parametrize("command", ["info", "classify", "listen"])
def test_bad_models_are_one_line_and_exit_2(command, tmp_path, shared_data, monkeypatch, capsys):
    clip = str(shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac")
    for case, (model, words) in bad_models(tmp_path / "models").items():
        args = {
            "info": ["info", str(model)],
            "classify": ["classify", "-m", str(model), clip],
            "listen": ["listen", "-m", str(model), "--from-file", clip, "--fast"],
        }[command]
        code, out, err = main_in_process(monkeypatch, capsys, *args)
        assert_one_line_error(code, out, err, words, str(model), case=case)
    assert sorted(bad_models(tmp_path / "again")) == sorted(MODEL_CASES)


def bad_audio(folder: Path, shared_data: Path) -> dict[str, tuple[Path, str]]:
    """Files that are not usable audio, each with the words its error must say."""
    folder.mkdir(exist_ok=True)
    clip = shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"
    data, rate = sf.read(clip, dtype="int16")
    sf.write(folder / "whole.wav", data, rate, subtype="PCM_16")
    wav, flac = (folder / "whole.wav").read_bytes(), clip.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def add(name: str, path: Path, words: str) -> None:
        cases[name] = (path, words)

    add("missing", folder / "missing.wav", "audio file not found")
    (folder / "a-folder.wav").mkdir()
    add("directory", folder / "a-folder.wav", "got a directory")
    os.mkfifo(folder / "fifo.wav")  # opening it would block for ever: refused, not opened
    add("fifo", folder / "fifo.wav", "special file")
    (folder / "empty.wav").write_bytes(b"")
    add("empty file", folder / "empty.wav", "cannot read audio")
    sf.write(folder / "no-frames.wav", np.zeros(0, np.int16), 16000)
    add("no frames", folder / "no-frames.wav", "audio file is empty")
    (folder / "cut.wav").write_bytes(wav[: len(wav) // 2])
    add("truncated wav", folder / "cut.wav", "truncated")
    (folder / "cut.flac").write_bytes(flac[: len(flac) // 2])
    add("truncated flac", folder / "cut.flac", "truncated")
    (folder / "notes.wav").write_text("these are not the samples you are looking for\n" * 20)
    add("not audio", folder / "notes.wav", "cannot read audio")
    sf.write(folder / "4k.wav", data[:4000], 4000)
    add("rate too low", folder / "4k.wav", "unsupported sample rate 4000 Hz")
    sf.write(folder / "40ch.wav", np.zeros((1600, 40), np.int16), 16000)
    add("too many channels", folder / "40ch.wav", "unsupported channel count 40")
    return cases


@pytest.mark.parametrize("command", ["classify", "listen"])
def test_bad_audio_is_one_line_and_exit_2(command, tmp_path, shared_data, monkeypatch, capsys):
    for case, (path, words) in bad_audio(tmp_path / "audio", shared_data).items():
        args = ["classify", str(path)] if command == "classify" else ["listen", "--fast"]
        if command == "listen":
            args += ["--from-file", str(path), "--display", "plain"]
        code, out, err = main_in_process(monkeypatch, capsys, *args)
        assert_one_line_error(code, out, err, words, str(path), case=case)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--stdin", "--rate", "1000000"], "--rate must be at least 8,000 and at most 384,000 Hz"),
        (["--stdin", "--rate", "16000", "--channels", "64"], "--channels must be at least 1"),
        (["--rate", "4000"], "--rate must be at least 8,000"),  # before any device is opened
        (["--channels", "0"], "--channels must be at least 1 and at most 32 (got 0)"),
        (["--stdin", "--stuck-after", "-1"], "--stuck-after"),
    ],
)
def test_unsupported_rates_and_channels(args, words, monkeypatch, capsys):
    code, out, err = main_in_process(monkeypatch, capsys, "listen", *args)
    assert_one_line_error(code, out, err, words)


def test_unwritable_log_paths_fail_before_listening(tmp_path, shared_data, monkeypatch, capsys):
    clip = str(shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac")
    (tmp_path / "a-file").write_text("")
    for log, words in (
        (tmp_path / "a-file" / "out.jsonl", "cannot open the log"),  # under a regular file
        (tmp_path, "is a directory"),
        (Path("/proc/edge-asc-test/out.jsonl"), "cannot open the log"),  # nobody creates here
    ):
        args = ["listen", "--from-file", clip, "--fast", "--log", str(log), "--display", "plain"]
        code, out, err = main_in_process(monkeypatch, capsys, *args)
        assert_one_line_error(code, out, err, words, str(log))


def no_permission_override() -> Callable[[], None] | None:
    """For preexec_fn: root, but without the capabilities that ignore file permissions, so
    that a mode-000 file is unreadable to the child as it would be to any user."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def test_unreadable_audio_and_log_folder(tmp_path, shared_data):
    """Permissions, for real: files nobody may read, a folder nobody may write into."""
    from edge_asc.model import default_model_path

    secret = tmp_path / "secret.flac"
    secret.write_bytes((shared_data / "tut-urban-2018-demo" / "park.flac").read_bytes())
    secret.chmod(0)
    model = tmp_path / "secret.onnx"
    model.write_bytes(default_model_path().read_bytes())
    model.chmod(0)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    cmd = [sys.executable, "-c", "from edge_asc.cli import main; main()"]
    cases = [
        (["classify", str(secret)], "Permission denied"),
        (["listen", "--from-file", str(secret), "--fast"], "Permission denied"),
        (["demo", "--fast", "--log", str(locked / "out.jsonl")], "Permission denied"),
        (["info", str(model)], "Permission denied"),
        (["classify", "-m", str(model), str(secret)], "Permission denied"),
    ]
    for args, words in cases:
        try:
            result = subprocess.run(
                [*cmd, *args],
                capture_output=True,
                text=True,
                timeout=300,
                preexec_fn=no_permission_override(),
            )
        except subprocess.SubprocessError as err:
            pytest.skip(f"cannot drop the permission override here: {err}")
        assert_one_line_error(result.returncode, result.stdout, result.stderr, words)


def test_cli_does_not_load_pydantic(shared_data):
    # typer 0.29 routes every option through pydantic: about 10 MiB more peak RSS in `listen`, a
    # service that runs for months on a Pi (pyproject caps typer below it). Checked on real
    # commands, so a dependency that starts importing pydantic again fails here.
    clip = shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"
    code = (
        "import sys\n"
        "from edge_asc.cli import main\n"
        "for args in (['classify', '--json'], ['listen', '--fast', '--display', 'plain', "
        f"'--from-file']):\n"
        f"    sys.argv = ['edge-asc', *args, {str(clip)!r}]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert '"label"' in result.stdout  # classify's JSON line
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --- numbers: every numeric option of every command, finite and in range -----------------------

CLIP = "urbansound8k-16k/fold3/103199-4-0-0.flac"
# Out-of-range values of each numeric option; test_every_numeric_option_is_covered keeps this
# in step with the commands, so an option added later cannot go unchecked (an entry for one
# this version does not declare yet is skipped).
BAD_NUMBERS = {
    ("classify", "--hop"): ["nan", "inf", "-inf", "0", "-0.5", "61"],
    ("classify", "--threshold"): ["nan", "-0.1", "1.5"],
    ("classify", "--silence-dbfs"): ["nan", "inf", "1", "-201"],
    ("listen", "--silence-dbfs"): ["nan", "-inf", "0.5", "-1000"],
    ("train", "--epochs"): ["-1", "10001"],
    ("train", "--seed"): ["-1", str(2**32)],
    ("listen", "--rate"): ["0", "-16000", "4000", "1000000"],
    ("listen", "--channels"): ["0", "-1", "33"],
    ("listen", "--threads"): ["0", "-1", "1000"],
    ("listen", "--hop"): ["nan", "inf", "0", "-0.5", "61"],
    ("listen", "--smooth-windows"): ["0", "-3", str(10**30)],
    ("listen", "--margin"): ["nan", "-0.1", "1", "inf"],
    ("listen", "--threshold"): ["nan", "-0.1", "1.5"],
    ("listen", "--top-k"): ["0", "-1", "11"],  # 11: one more than the model's classes
    ("listen", "--log-max-mb"): ["nan", "inf", "0", "-1", "1e-9"],
    ("listen", "--log-keep"): ["-1", "1001"],
    ("listen", "--stuck-after"): ["nan", "inf", "-1"],
    ("listen", "--db-keep-days"): ["nan", "inf", "0", "-1", "36501"],
    ("listen", "--db-windows"): ["nan", "inf", "-1", "86401"],
    ("listen", "--event-confidence"): ["nan", "-0.1", "1.5"],
    ("listen", "--event-gap"): ["nan", "inf", "-1"],
    ("listen", "--event-min-duration"): ["nan", "inf", "-1", "86401"],
    ("listen", "--notify-cooldown"): ["nan", "inf", "-1", "86401"],
    ("listen", "--notify-min-confidence"): ["nan", "-0.1", "1.5"],
    ("listen", "--on-event-timeout"): ["nan", "inf", "0", "-1", "0.05", "3601"],
    ("listen", "--clips-max-mb"): ["nan", "inf", "0", "-1", "1000001"],
    ("listen", "--clips-keep-days"): ["nan", "inf", "0", "-1", "36501"],
    ("bench", "--runs"): ["0", "-5"],
    ("bench", "--fast-seconds"): ["nan", "inf", "1"],
    ("bench", "--realtime-seconds"): ["nan", "inf", "0"],
}


def numeric_options() -> set[tuple[str, str]]:
    """(command, option) for every int or float option the app declares."""
    import typer

    from edge_asc.cli import app

    group = typer.main.get_command(app)
    return {
        (name, param.opts[0])
        for name, command in group.commands.items()
        for param in command.params
        if param.type.name in {"int", "integer", "float"}
    }


def test_every_numeric_option_is_covered():
    assert sorted(numeric_options() - set(BAD_NUMBERS)) == []


def number_case_args(command: str, option: str, value: str, tmp_path: Path, shared_data: Path):
    """A command line that would run (briefly) if the value were accepted."""
    clip = str(shared_data / CLIP)
    base = {
        "classify": [clip],
        "train": [str(tmp_path / "no-data"), "--quick"],
        "listen": ["--from-file", clip, "--fast", "--display", "none"],
        "bench": ["--runs", "3", "--fast-seconds", "4", "--realtime-seconds", "2"],
    }[command]
    if option in {"--rate", "--channels"}:  # they do not apply to --from-file
        base = ["--stdin", "--rate", "16000"]
    return [command, *base, f"{option}={value}"]  # the last occurrence wins


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [(c, o, v) for (c, o), values in BAD_NUMBERS.items() for v in values],
)
def test_bad_numbers_are_one_line_naming_the_option(
    command, option, value, tmp_path, shared_data, monkeypatch, capsys
):
    if (command, option) not in numeric_options():
        pytest.skip(f"{command} {option}: not declared by this version")
    args = number_case_args(command, option, value, tmp_path, shared_data)
    code, out, err = main_in_process(monkeypatch, capsys, *args)
    assert_one_line_error(code, out, err, f"{option} must be", case=" ".join(args))
    others = {o for c, o in BAD_NUMBERS if c == command and o != option}
    assert not [o for o in others if o in err], err  # the one option at fault, no other


def test_numbers_at_their_limits_are_accepted(shared_data, monkeypatch, capsys):
    clip = str(shared_data / CLIP)
    code, out, err = main_in_process(monkeypatch, capsys, "classify", "--hop", "60", clip)
    assert code in (0, None) and out.startswith(clip), err
    args = ["listen", "--from-file", clip, "--fast", "--display", "plain", "--threads", "1"]
    args += ["--margin", "0", "--threshold", "1", "--top-k", "10", "--smooth-windows", "1"]
    args += ["--stuck-after", "0", "--hop", "0.02"]
    code, out, err = main_in_process(monkeypatch, capsys, *args)
    assert code in (0, None), err
    assert len(out.splitlines()) > 100  # a window every 20 ms of a 4-s clip


# --- --log never damages a file the app did not write -------------------------------------------


def test_log_onto_a_file_it_did_not_write_is_refused_untouched(tmp_path, shared_data):
    """The case that was found: `--log rec.flac` once cut a recording's last 84 bytes, added JSON.
    A subprocess each, with a timeout: a FIFO must be refused, not block the start."""
    from edge_asc.model import default_model_path

    clip = str(shared_data / CLIP)
    targets = {
        "rec.flac": (shared_data / "tut-urban-2018-demo" / "park.flac").read_bytes(),
        "model.onnx": default_model_path().read_bytes(),
        "notes.txt": b"a text file\nwith two lines",
    }
    cases = []
    for name, data in targets.items():
        (tmp_path / name).write_bytes(data)
        cases.append((["--log", str(tmp_path / name)], "was not written by edge-asc"))
    os.mkfifo(tmp_path / "fifo")
    cases.append((["--log", str(tmp_path / "fifo")], "is not a regular file"))
    cases.append((["--log", "/proc/version"], "/proc/version"))
    ours = tmp_path / "ours.jsonl"
    assert run("listen", "--from-file", clip, "--fast", "--log", str(ours)).returncode == 0
    cases.append((["--log", str(ours), "--log-format", "csv"], "JSON Lines"))
    targets["ours.jsonl"] = ours.read_bytes()
    demo = run("demo", "--fast", "--log", str(tmp_path / "notes.txt"), "--display", "none")
    assert_one_line_error(demo.returncode, demo.stdout, demo.stderr, "not written by edge-asc")
    for args, words in cases:
        result = run("listen", "--from-file", clip, "--fast", "--display", "plain", *args)
        assert_one_line_error(result.returncode, result.stdout, result.stderr, words, case=args)
    for name, data in targets.items():
        assert (tmp_path / name).read_bytes() == data, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*targets, "fifo"])


# --- info: whole values on a pipe, a meaningful validation line ---------------------------------


def test_info_on_a_pipe_prints_whole_values(tmp_path):
    from edge_asc.model import default_model_path

    deep = tmp_path / ("a-folder-with-a-long-name-" * 4) / "and-a-model-file-named-at-length.onnx"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(default_model_path().read_bytes())
    result = run("info", str(deep))  # stdout is a pipe
    assert result.returncode == 0, result.stderr
    assert str(deep) in result.stdout and "…" not in result.stdout
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines()[2:])
    assert rows["classes"].endswith("siren, street_music")  # one line, not folded at 80
    # The shipped model was trained on every split: no "splits []: FP32 -, INT8 -".
    assert "validated on   not validated: trained on every split (see the reference run)" in (
        result.stdout
    )
    assert "splits []" not in result.stdout and "FP32 -" not in result.stdout


def test_info_at_a_narrow_terminal_wraps_but_never_cuts(tmp_path):
    from rich.console import Console

    from edge_asc.display import print_card
    from edge_asc.model import Model

    loaded = Model()
    console = Console(force_terminal=True, width=60, record=True)
    long_path = tmp_path / ("x" * 90) / "model.onnx"
    print_card(loaded.card, long_path, loaded.id, console)
    text = console.export_text()
    assert "…" not in text
    assert "".join(text.split()).count("".join(str(long_path).split())) == 1


@pytest.mark.parametrize("extra", [["--val", "3"], ["--train", "1,2"], ["--reference", "r.json"]])
def test_rotate_refuses_folds_chosen_by_hand(monkeypatch, capsys, shared_data, tmp_path, extra):
    data = str(shared_data / "urbansound8k-16k")
    code, out, err = main_in_process(
        monkeypatch, capsys, "train", data, "--rotate", "--out", str(tmp_path / "r"), *extra
    )
    assert_one_line_error(code, out, err, "--rotate chooses the folds itself")
    assert not (tmp_path / "r").exists()


# --- listen's source options, checked before any device is opened ------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_file": "x.wav", "stdin": True}, "one of"),
        ({"fast": True}, "--from-file"),
        ({"from_file": "x.wav", "rate": 48000}, "do not apply"),
        ({"stdin": True, "device": "usb", "rate": 16000}, "does not apply"),
        # Refused, not ignored: a file and a microphone have no raw sample format.
        ({"from_file": "x.wav", "pcm": "S16_LE"}, "--format .* --stdin only"),
        ({"pcm": "FLOAT_LE"}, "--format .* --stdin only"),
        # Raw PCM has no header: a guessed rate would be wrong without a sign.
        ({"stdin": True}, "--stdin needs --rate"),
        # An empty --format was read as S16_LE, as if none had been given.
        ({"stdin": True, "rate": 16000, "pcm": ""}, "unknown PCM format ''"),
    ],
)
def test_open_source_rejects_contradictions(kwargs, message):
    with pytest.raises(EdgeAscError, match=message):
        open_source(**kwargs)


def test_stdin_at_a_terminal_is_refused_not_waited_on():
    """A person at a terminal is not a PCM stream: say so instead of waiting for ever."""
    main, other = pty.openpty()
    try:
        with (
            open(other, "rb", buffering=0, closefd=False) as terminal,
            pytest.raises(EdgeAscError, match="standard input is a terminal"),
        ):
            open_source(stdin=True, rate=16000, stdin_stream=terminal)
    finally:
        os.close(main)
        os.close(other)


def test_python_dash_m_runs_the_same_commands(shared_data, tmp_path):
    clip = shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac"
    by_module = subprocess.run(
        [sys.executable, "-m", "edge_asc", "classify", "--json", str(clip)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert by_module.returncode == 0, by_module.stderr
    assert by_module.stdout == run("classify", "--json", str(clip), cwd=tmp_path).stdout
    assert json.loads(by_module.stdout)["file"] == str(clip)
