"""`listen --config FILE`: every option from the file, the command line over it, bad files in
one line (exit 2), and the service's example file run for real on replayed shared clips."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import typer.main
from listener import edge_asc
from replay import SEQUENCE, join_clips

from edge_asc.cli import app
from edge_asc.config import options_by_name
from edge_asc.errors import EdgeAscError
from edge_asc.history import read_events

SYSTEMD_DIR = Path(__file__).resolve().parents[1] / "systemd"
EXAMPLE = SYSTEMD_DIR / "config.toml"
CPUS = len(os.sched_getaffinity(0))
# A value unlike the default for every option of `listen`, as TOML, and as the option gets it.
SAMPLES: dict[str, tuple[str, object]] = {
    "device": ('"USB"', "USB"),
    "rate": ("48000", 48000),
    "channels": ("2", 2),
    "from-file": ('"/srv/rec.flac"', "/srv/rec.flac"),
    "fast": ("true", True),
    "stdin": ("true", True),
    "format": ('"S24_3LE"', "S24_3LE"),
    "model": ('"/srv/my.onnx"', "/srv/my.onnx"),
    "threads": (str(min(2, CPUS)), min(2, CPUS)),
    "hop": ("0.25", 0.25),
    "smoothing": ('"ema"', "ema"),
    "smooth-windows": ("8", 8),
    "margin": ("0.2", 0.2),
    "threshold": ("0.4", 0.4),
    "top-k": ("5", 5),
    "log": ('"/srv/p.jsonl"', "/srv/p.jsonl"),
    "log-format": ('"csv"', "csv"),
    "log-max-mb": ("5", 5.0),
    "log-keep": ("2", 2),
    "stuck-after": ("30", 30.0),
    "silence-dbfs": ("-80", -80.0),
    "display": ('"plain"', "plain"),
    "db": ('"/srv/h.db"', "/srv/h.db"),
    "db-keep-days": ("30", 30.0),
    "db-windows": ("10", 10.0),
    "event-confidence": ("0.6", 0.6),
    "class-threshold": ('["siren=0.7"]', ("siren=0.7",)),
    "event-class": ('["siren", "dog_bark"]', ("siren", "dog_bark")),
    "event-exclude": ('"gun_shot"', ("gun_shot",)),
    "event-gap": ("2", 2.0),
    "event-min-duration": ("0.5", 0.5),
    "mqtt": ('"mqtt://broker.lan"', "mqtt://broker.lan"),
    "name": ('"kitchen"', "kitchen"),
    "mqtt-ca": ('"/srv/ca.pem"', "/srv/ca.pem"),
    "mqtt-cert": ('"/srv/c.pem"', "/srv/c.pem"),
    "mqtt-key": ('"/srv/k.pem"', "/srv/k.pem"),
    "ha-prefix": ('"ha"', "ha"),
    "notify-cooldown": ("120", 120.0),
    "notify-min-confidence": ("0.8", 0.8),
    "on-event": ('"cat >> /srv/events.jsonl"', "cat >> /srv/events.jsonl"),
    "on-event-timeout": ("3", 3.0),
    "http": ('"127.0.0.1:8081"', "127.0.0.1:8081"),
    "http-token": ('"a-long-secret"', "a-long-secret"),
    "clips": ("true", True),
    "clips-max-mb": ("100", 100.0),
    "clips-keep-days": ("7", 7.0),
}


def listen_command():
    return typer.main.get_command(app).commands["listen"]  # type: ignore[attr-defined]


def parsed(*args: str) -> dict:
    """The options `listen ARGS` runs with: click's own parsing, callbacks included."""
    return listen_command().make_context("listen", list(args)).params


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_every_option_is_settable_from_the_file(tmp_path):
    assert set(SAMPLES) == set(options_by_name(listen_command()))  # a new option needs a sample
    lines = "\n".join(f"{key} = {toml}" for key, (toml, _) in SAMPLES.items())
    params = parsed("--config", str(write(tmp_path, f"[listen]\n{lines}\n")))
    for key, (_, want) in SAMPLES.items():
        name = options_by_name(listen_command())[key].name
        assert params[name] == want, key


def test_the_command_line_overrides_the_file(tmp_path):
    path = write(
        tmp_path,
        '[listen]\nhop = 1.0\ntop-k = 5\nevent-class = ["siren"]\n[thresholds]\ndog_bark = 0.8\n',
    )
    for args in (
        ["--config", str(path), "--hop", "0.25"],
        ["--hop", "0.25", "--config", str(path)],
    ):
        params = parsed(*args, "--event-class", "jackhammer")
        assert params["hop"] == 0.25 and params["top_k"] == 5
        assert params["event_class"] == ("jackhammer",)
        assert params["class_threshold"] == ("dog_bark=0.8",)
    both = write(
        tmp_path, '[listen]\nclass-threshold = ["siren=0.7"]\n[thresholds]\ngun_shot = 1\n'
    )
    assert parsed("--config", str(both))["class_threshold"] == ("siren=0.7", "gun_shot=1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[listen]\nhopp = 0.5\n", "unknown key 'hopp' in [listen]"),
        ("[listen]\nconfig = 'other.toml'\n", "unknown key 'config' in [listen]"),
        ("[listne]\nhop = 0.5\n", "unknown table or key 'listne'"),
        ("hop = 0.5\n", "unknown table or key 'hop'"),
        ("listen = 3\n", "listen must be a table"),
        ("[listen]\nhop = 'fast'\n", "[listen] hop must be a number (got string 'fast')"),
        ("[listen]\ntop-k = 2.5\n", "[listen] top-k must be an integer (got float 2.5)"),
        ("[listen]\ntop-k = true\n", "[listen] top-k must be an integer (got bool True)"),
        ("[listen]\nfast = 1\n", "[listen] fast must be true or false (got int 1)"),
        ("[listen]\nlog = 5\n", "[listen] log must be a string (got int 5)"),
        ("[listen]\nevent-class = [1]\n", "[listen] event-class must be an array of strings"),
        ("[listen]\nhop = 100\n", "--hop must be more than 0 and at most 60 s"),
        ("[listen]\nhop = nan\n", "--hop must be"),
        ("[listen]\nhop =\n", "is not valid TOML"),
        ("[thresholds]\nsiren = 'high'\n", "[thresholds] siren must be a number from 0 to 1"),
        ("[thresholds]\nsiren = 2\n", "[thresholds] siren must be from 0 to 1 (got 2)"),
        ("thresholds = 1\n", "thresholds must be a table"),
    ],
)
def test_bad_files_are_one_line_naming_the_key(text, message, tmp_path):
    with pytest.raises(EdgeAscError) as err:
        parsed("--config", str(write(tmp_path, text)))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_files_through_the_real_command(shared_data, tmp_path):
    """As a user meets them: exit 2 and one line, no traceback, before any audio."""
    audio = shared_data / "urbansound8k-16k" / "fold3" / f"{SEQUENCE[0][0]}.flac"
    cases = {
        "[listen]\nlog-max-mbs = 5\n": "unknown key 'log-max-mbs'",
        "[listen]\nlog-max-mb = '5'\n": "log-max-mb must be a number",
        f"[listen]\nfrom-file = '{audio}'\nfast = true\ndb = '{tmp_path / 'h.db'}'\n"
        "[thresholds]\nsirne = 0.5\n": "not a class of the model: sirne",
    }
    for text, message in cases.items():
        result = edge_asc("listen", "--config", str(write(tmp_path, text)))
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
    missing = edge_asc("listen", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"edge-asc: cannot read the config {tmp_path / 'none.toml'}: No such file or directory"
    ]
    binary = edge_asc("listen", "--config", str(audio))
    assert binary.returncode == 2 and "not UTF-8 text" in binary.stderr
    assert len(binary.stderr.strip().splitlines()) == 1


def test_the_unit_starts_from_the_example_file(shared_data, tmp_path):
    """The unit's ExecStart with the example file as /etc/edge-asc/config.toml, its two paths
    moved to tmp_path, replaying the five clips: it runs, and the events reach the history."""
    from test_systemd import UNIT, last, parse_unit

    argv = shlex.split(last(parse_unit(UNIT.read_text())["Service"], "ExecStart") or "")
    assert argv[1:4] == ["listen", "--config", "/etc/edge-asc/config.toml"]
    assert argv[-1] == "$EDGE_ASC_OPTIONS"
    seq = tmp_path / "seq.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE], seq)
    db = tmp_path / "history.db"
    replay = [
        "--from-file",
        str(seq),
        "--fast",
        "--db",
        str(db),
        "--log",
        str(tmp_path / "p.jsonl"),
    ]
    args = [str(EXAMPLE) if a == "/etc/edge-asc/config.toml" else a for a in argv[1:-1]]
    params = parsed(*args[1:], *replay)
    assert params["display"] == "none" and params["db_keep_days"] == 365.0
    assert params["class_threshold"] == ("gun_shot=0.7", "siren=0.6")
    result = edge_asc(*args, *replay)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # display = "none"
    assert [e.label for e in read_events(db)] == [label for _, label in SEQUENCE]


def test_the_systemd_readme_shows_the_example_file_as_it_is():
    readme = (SYSTEMD_DIR / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == EXAMPLE.read_text()
