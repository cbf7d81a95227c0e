"""A private PulseAudio daemon for live-audio tests (docs/architecture.md, section 5).

A null sink's monitor is a real microphone for the program under test; `paplay` is the person
talking into it. The daemon can be stopped and started again in the same runtime folder, at the
same socket, which is how tests/test_faults.py pulls the device from under a running listener.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SINK_16K = "module-null-sink sink_name=virtmic format=s16le rate=16000 channels=1 norewinds=1"
SINK_48K = "module-null-sink sink_name=virtmic48 format=s16le rate=48000 channels=2 norewinds=1"


def require_pulseaudio() -> None:
    missing = [b for b in ("pulseaudio", "pactl", "paplay") if shutil.which(b) is None]
    if missing:
        pytest.skip(
            f"PulseAudio is not installed ({', '.join(missing)} missing); "
            "apt-get install pulseaudio pulseaudio-utils (.ci/run does)"
        )


class PulseServer:
    """One daemon in its own runtime folder; nothing shared with the user's sound server.

    PULSE_SERVER names the socket, so a client never autospawns a daemon of its own while this
    one is stopped.
    """

    def __init__(self, runtime: Path, sinks: list[str], default_source: str) -> None:
        self.runtime = runtime
        self.sinks, self.default_source = sinks, default_source
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(XDG_RUNTIME_DIR=str(runtime), HOME=str(runtime))
        env["PULSE_SERVER"] = f"unix:{runtime}/pulse/native"
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.resampler = self.resample_method()  # asked once: every restart uses the same

    @staticmethod
    def resample_method() -> str:
        """The best resampler this build has. A desktop's default (speex-float-1) rolls off the
        top of the band, where the highest mel band (to 8 kHz) lies: through it, a 5x5 model's
        probabilities for a jackhammer moved by 0.08 against 0.018 for a soxr round trip."""
        listed = subprocess.run(
            ["pulseaudio", "--dump-resample-methods"], capture_output=True, text=True, timeout=20
        ).stdout.split()
        return next((m for m in ("soxr-vhq", "speex-float-10") if m in listed), "auto")

    def pactl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=20
        )

    def play(self, path: Path, sink: str) -> None:
        done = subprocess.run(
            ["paplay", f"--device={sink}", str(path)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        """Start the daemon and wait until it answers, with the default source set."""
        cmd = ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit=yes"]
        cmd += [f"--resample-method={self.resampler}"]
        cmd += ["-L", "module-native-protocol-unix"]
        for sink in self.sinks:
            cmd += ["-L", sink]
        self.starts += 1
        log = self.runtime / f"pulseaudio-{self.starts}.log"
        with open(log, "w") as daemon_log:
            self.process = subprocess.Popen(
                cmd, env=self.env, stdout=daemon_log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while self.pactl("info").returncode != 0:
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "pulseaudio did not answer within 20 s"
            time.sleep(0.05)
        assert self.pactl("set-default-source", self.default_source).returncode == 0

    def stop(self) -> None:
        """SIGTERM by PID, as a crash or `systemctl restart` of the server would end it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
