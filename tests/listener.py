"""`edge-asc` as a real subprocess: run it, watch its log and its stderr, stop it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

EDGE_ASC = [sys.executable, "-c", "from edge_asc.cli import main; main()"]


def edge_asc(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run([*EDGE_ASC, *args], timeout=300, check=False, **kwargs)


def read_log(path: Path) -> list[dict]:
    """Every complete line, parsed (a line being written right now is left out)."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines = lines[:-1]
    return [json.loads(line) for line in lines]


def wait_for(condition: Callable[[], bool], timeout: float, proc: subprocess.Popen, what: str):
    """Poll until `condition()`; fail if the process exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the listener exited ({proc.returncode}) while waiting for {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def copy_out(pipe: IO[bytes], path: Path) -> None:
    """Pipe to file, line by line as it comes (the file stays outside the child's limits)."""
    with open(path, "wb") as out:
        for line in iter(pipe.readline, b""):
            out.write(line)
            out.flush()
    pipe.close()


class Listener:
    """`edge-asc ARGS` in the background; its stdout and stderr are copied to files under
    `folder` by this process, so a file size limit set for the child does not reach them."""

    def __init__(self, folder: Path, *args: str, **popen: Any) -> None:
        self.stdout_path, self.stderr_path = folder / "stdout.txt", folder / "stderr.txt"
        self.stdout_path.touch()
        self.stderr_path.touch()
        self.proc = subprocess.Popen(
            [*EDGE_ASC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
        )
        self._copiers = [
            threading.Thread(target=copy_out, args=(pipe, path), daemon=True)
            for pipe, path in (
                (self.proc.stdout, self.stdout_path),
                (self.proc.stderr, self.stderr_path),
            )
        ]
        for copier in self._copiers:
            copier.start()

    def wait(self, timeout: float) -> int:
        """The exit code, once the process and the copies of its output are done."""
        code = self.proc.wait(timeout=timeout)
        for copier in self._copiers:
            copier.join(timeout=timeout)
        return code

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        wait_for(condition, timeout, self.proc, f"{what} (stderr: {self.stderr[-2000:]!r})")

    def wait_stderr(self, text: str, timeout: float = 60, count: int = 1) -> None:
        self.wait_for(lambda: self.stderr.count(text) >= count, timeout, repr(text))

    def stop(self, signum: int, timeout: float = 30) -> int:
        self.proc.send_signal(signum)
        return self.wait(timeout)

    def kill(self) -> None:
        """Whatever happened: no process left running and no pipe of ours left open."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.wait(30)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
