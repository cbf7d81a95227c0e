"""`listen --on-event COMMAND`: run a command with each event as JSON on stdin, so a detection
can send a phone notification, switch a light or call a web hook without any broker.

When an event starts (it has lasted `--event-min-duration`, and the per-class cooldown and the
minimum confidence let it through, exactly as for the MQTT start message), its fields go to the
command's standard input as one line of JSON, `{"type": "start", ...}` (the event as it stands
then: its `end` and `duration_s` are so far). The command runs in `/bin/sh -c`, in a session of
its own, with stdout discarded and the end of stderr kept for the notice when it fails.

The audio path never waits for it: `window` only queues. One worker thread runs the commands
one at a time, in the order of the events; up to MAX_PENDING events wait behind a slow one, and
newer ones are dropped (said once) rather than queued without bound. A command still running
after its timeout is killed with its whole process group. A failure (an exit status other than
0, a timeout, a command that cannot start) is said once, and once more when the command works
again; it is never fatal. At a stop the queue gets one more timeout to drain; what is left is
killed or not run, and said.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_asc.errors import warn
from edge_asc.events import Event, NotifyPolicy

if TYPE_CHECKING:
    from edge_asc.prediction import Prediction

MAX_PENDING = 16
DEFAULT_TIMEOUT_S = 10.0
STDERR_SHOWN = 200  # characters of a failed command's last stderr line in the notice


@dataclass(frozen=True)
class HookOptions:
    command: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    cooldown_s: float = 30.0
    min_confidence: float = 0.0


class EventHook:
    """An EventSink watcher (see the module): `window` on the audio path, `close` at the end."""

    def __init__(
        self,
        options: HookOptions,
        min_duration_s: float = 0.0,
        notify: Callable[[str], None] = warn,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.options, self.min_duration_s, self.notify = options, min_duration_s, notify
        self.max_pending = max_pending
        self._policy = NotifyPolicy(options.cooldown_s, options.min_confidence)
        self._told: set[str] = set()  # ids of the events in progress already passed on
        self._pending: deque[bytes] = deque()
        self._wake = threading.Condition()
        self._stop_at = math.inf  # monotonic: after it, nothing more is run (set by close)
        self._stopping = False
        self._dropped = 0  # events dropped since the queue was last full
        self._failures = 0  # failures since the command last worked
        self._worker = threading.Thread(target=self._work, name="on-event", daemon=True)
        self._worker.start()

    # --- the audio path ----------------------------------------------------------------------

    def window(self, pred: Prediction | None, ended: list[Event], current: Event | None) -> None:
        """The EventWatcher call: pass on the event in progress once it is worth telling."""
        for event in ended:
            self._told.discard(event.id)
        if current is None or current.id in self._told:
            return
        if current.duration_s < self.min_duration_s - 1e-9:
            return
        if self._policy.worth_telling(current):
            self._policy.told(current)
            self._told.add(current.id)
            line = json.dumps({"type": "start", **current.to_dict()}) + "\n"
            self._submit(line.encode("utf-8"))

    def _submit(self, payload: bytes) -> None:
        with self._wake:
            if len(self._pending) >= self.max_pending:
                if self._dropped == 0:
                    self.notify(
                        f"the --on-event command is behind: {self.max_pending} events wait for "
                        "it; newer ones are dropped until it catches up"
                    )
                self._dropped += 1
                return
            self._pending.append(payload)
            self._wake.notify()

    # --- the worker thread -------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return
                left = self._stop_at - time.monotonic()
                if left <= 0:
                    self.notify(
                        f"{len(self._pending)} events not passed to the --on-event command: "
                        "the listener stopped"
                    )
                    self._pending.clear()
                    return
                payload = self._pending.popleft()
                if not self._pending and self._dropped:
                    self.notify(
                        f"the --on-event command caught up; {self._dropped} events were dropped"
                    )
                    self._dropped = 0
            self._run(payload, min(self.options.timeout_s, left))

    def _run(self, payload: bytes, limit_s: float) -> None:
        """Run the command once with `payload` on stdin, killing it after `limit_s`."""
        with tempfile.TemporaryFile() as errors:  # a file: no pipe a stuck child could hold
            try:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", self.options.command],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    start_new_session=True,  # its own process group, killed as one
                )
            except OSError as err:
                self._failed(f"cannot start /bin/sh: {err.strerror}")
                return
            assert proc.stdin is not None
            try:
                proc.stdin.write(payload)  # one short line: fits the pipe, never blocks
                proc.stdin.close()
            except OSError:
                pass  # the command does not read its input: its business
            try:
                code = proc.wait(timeout=limit_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self._failed(f"still running after {limit_s:.3g} s, killed")
                return
            if code != 0:
                errors.seek(max(0, errors.seek(0, os.SEEK_END) - 4096))
                last = errors.read().decode("utf-8", "replace").strip().splitlines()[-1:]
                said = f": {last[0][:STDERR_SHOWN]}" if last else ""
                why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                self._failed(f"{why}{said}")
                return
        if self._failures:
            self.notify(f"the --on-event command works again ({self._failures} failed before)")
            self._failures = 0

    def _failed(self, why: str) -> None:
        if self._failures == 0:
            self.notify(
                f"the --on-event command failed ({why}); the listener goes on, and says when it "
                "works again"
            )
        self._failures += 1

    def close(self) -> None:
        """Give what is queued one more timeout, then kill or drop the rest (see the module)."""
        with self._wake:
            self._stop_at = time.monotonic() + self.options.timeout_s
            self._stopping = True
            self._wake.notify()
        self._worker.join()
