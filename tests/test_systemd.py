"""The systemd unit: it verifies cleanly, scores <= 2.0 exposure and keeps what the app needs.

`systemd-analyze verify` and `systemd-analyze security --offline=true` work without systemd
running as PID 1 (docs/architecture.md, section 5); the tests that call them skip only where
the tool is not installed. `verify` exits 0 on typos but prints them, so a test fails on any
output.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[1] / "systemd"
UNIT = SYSTEMD_DIR / "edge-asc.service"
ENV_FILE = SYSTEMD_DIR / "edge-asc.env"

INSTALLED_EXE = "/opt/edge-asc/venv/bin/edge-asc"
MAX_EXPOSURE = 2.0

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value in order (keys such as SystemCallFilter= repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a KEY=VALUE line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text())["Service"]


def last(service: dict[str, list[str]], key: str) -> str | None:
    values = service.get(key)
    return values[-1] if values else None


def run_analyze(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        cwd=cwd,
        timeout=60,
        check=False,
    )


@needs_analyze
def test_verify_prints_nothing(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit prints nothing at all.

    Rewritten in a temporary copy, and only there:
    - ExecStart's /opt/edge-asc/venv/bin/edge-asc, the installed path, which exists only on an
      installed machine (verify prints "Command ... is not executable" and stops checking): it
      becomes this test environment's real `edge-asc` entry point, next to sys.executable.
    - ExecReload's /bin/kill, only where this machine lacks it: it comes with procps (Priority:
      important, present on Raspberry Pi OS and any standard Debian), which a minimal CI image
      may not have; it becomes a stub in tmp_path.
    Nothing else changes. User=edge-asc and Group=edge-asc stay as they are: verify does not look
    users up (it prints nothing about a user that does not exist here).
    """
    entry_point = Path(sys.executable).parent / "edge-asc"
    if not entry_point.is_file():
        found = shutil.which("edge-asc")
        assert found, "edge-asc is not installed in this environment (pip install -e .)"
        entry_point = Path(found)
    text = UNIT.read_text()
    assert text.count(f"ExecStart={INSTALLED_EXE} ") == 1
    text = text.replace(f"ExecStart={INSTALLED_EXE} ", f"ExecStart={entry_point} ")
    if not Path("/bin/kill").exists():
        stub = tmp_path / "kill"
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        text = text.replace("ExecReload=/bin/kill ", f"ExecReload={stub} ")
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    copy = unit_dir / UNIT.name
    copy.write_text(text)

    result = run_analyze("verify", str(copy), cwd=tmp_path)
    assert result.stdout + result.stderr == "", result.stdout + result.stderr
    assert result.returncode == 0


@needs_analyze
def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """The check above is live: verify prints a misspelt value and an unknown key."""
    text = UNIT.read_text().replace("Restart=on-failure", "Restart=on-failur\nRestartSecs=5")
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    result = run_analyze("verify", str(copy), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "on-failur" in output
    assert "RestartSecs" in output


@needs_analyze
def test_security_exposure_at_most_2() -> None:
    result = run_analyze("security", "--offline=true", "--no-pager", str(UNIT))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, output
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, output


def test_unit_runs_listen_with_its_log_in_the_logs_directory(
    service: dict[str, list[str]],
) -> None:
    argv = shlex.split(last(service, "ExecStart") or "")
    assert argv[0] == INSTALLED_EXE
    assert argv[1] == "listen"
    assert "--log" in argv
    log_path = Path(argv[argv.index("--log") + 1])
    assert log_path.suffix == ".jsonl"
    # ProtectSystem=strict leaves the LogsDirectory= as the only writable place.
    assert last(service, "ProtectSystem") == "strict"
    logs_dir = last(service, "LogsDirectory")
    assert logs_dir
    assert log_path.parent == Path("/var/log") / logs_dir
    # The options file adds to the command line, and it is optional (the "-").
    assert argv[-1] == "$EDGE_ASC_OPTIONS"
    assert "-/etc/edge-asc/edge-asc.env" in service["EnvironmentFile"]


def test_unit_keeps_what_the_service_needs(service: dict[str, list[str]]) -> None:
    assert last(service, "User") == "edge-asc"
    assert last(service, "Group") == "edge-asc"
    assert "audio" in (last(service, "SupplementaryGroups") or "").split()
    assert last(service, "Restart") == "on-failure"
    assert last(service, "RestartSec") == "5"
    assert last(service, "StandardOutput") == "journal"
    assert last(service, "KillSignal") == "SIGTERM"
    # Reload = SIGHUP to the main process: the app reopens its log file (logrotate).
    reload_argv = shlex.split(last(service, "ExecReload") or "")
    assert Path(reload_argv[0]).name == "kill"
    assert "-HUP" in reload_argv or "-SIGHUP" in reload_argv
    assert reload_argv[-1] in ("$MAINPID", "${MAINPID}")


def test_sound_devices_stay_reachable(service: dict[str, list[str]]) -> None:
    """The device cgroup admits ALSA, and /dev/snd is visible in the service's /dev."""
    allowed = [value.split() for value in service.get("DeviceAllow", [])]
    assert any(
        entry[0] == "char-alsa" and {"r", "w"} <= set(entry[1] if len(entry) > 1 else "rwm")
        for entry in allowed
    ), allowed
    if last(service, "PrivateDevices") in ("yes", "true", "on", "1"):
        binds = " ".join(service.get("BindPaths", []) + service.get("BindReadOnlyPaths", []))
        assert "/dev/snd" in binds, "PrivateDevices=yes hides /dev/snd unless bind-mounted"
    # No network now: AF_UNIX only (ALSA dmix/dsnoop, a sound server's socket).
    assert last(service, "RestrictAddressFamilies") == "AF_UNIX"


# Run in a fresh interpreter: turn on the kernel's memory-deny-write-execute (PR_SET_MDWE,
# Linux >= 6.3), which refuses what systemd's MemoryDenyWriteExecute= refuses (a mapping that
# is writable and executable), then create a PortAudio callback the way sounddevice does.
_MDWE_PROBE = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    print("unsupported")
    sys.exit(0)
from _sounddevice import ffi  # sounddevice's cffi module (does not load PortAudio)
try:
    ffi.callback("PaStreamCallback", lambda *args: 0)
except MemoryError:
    print("refused")
else:
    print("allowed")
"""


def test_memory_deny_write_execute_stays_off_while_callbacks_need_wx(
    service: dict[str, list[str]],
) -> None:
    """sounddevice's stream callback is a cffi ffi.callback(): under MemoryDenyWriteExecute=yes
    opening the microphone fails with "Cannot allocate write+execute memory". The unit must not
    turn it on while that holds (if a cffi release stops needing W+X, this says so)."""
    result = subprocess.run(
        [sys.executable, "-c", _MDWE_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    verdict = result.stdout.strip()
    if verdict == "unsupported":
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    mdwe = last(service, "MemoryDenyWriteExecute") in ("yes", "true", "on", "1")
    if verdict == "refused":
        assert not mdwe, "MemoryDenyWriteExecute=yes would break the PortAudio callback"
    else:
        assert verdict == "allowed", result.stdout


def _env_assignments(text: str) -> list[str]:
    """EDGE_ASC_OPTIONS values, set or commented-out examples alike."""
    values = []
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        if line.startswith("EDGE_ASC_OPTIONS="):
            values.append(line.partition("=")[2])
    return values


def test_example_env_file_uses_real_listen_options() -> None:
    import typer.main

    from edge_asc.cli import app

    listen = typer.main.get_command(app).commands["listen"]  # type: ignore[attr-defined]
    known = {opt for param in listen.params for opt in (*param.opts, *param.secondary_opts)}
    text = ENV_FILE.read_text()
    for raw in text.splitlines():
        line = raw.strip()
        assert not line or line.startswith("#") or re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", line), raw
    values = _env_assignments(text)
    assert values
    for value in values:
        # systemd strips the quotes when it reads the file, then splits $EDGE_ASC_OPTIONS (a
        # word of its own in ExecStart=) at whitespace.
        args = " ".join(shlex.split(value)).split()
        flags = [arg for arg in args if arg.startswith("-")]
        assert set(flags) <= known, f"not an `edge-asc listen` option: {set(flags) - known}"
        # The unit's log path is the only writable place: the options must not move it.
        assert "--log" not in args
