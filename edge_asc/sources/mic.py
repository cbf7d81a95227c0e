"""The microphone as a live source, reopened with backoff when the device is lost or stalls."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from edge_asc.errors import EdgeAscError
from edge_asc.sources.base import Source
from edge_asc.sources.capture import Capture
from edge_asc.sources.devices import choose_rate, import_sounddevice, resolve_device


class MicSource(Source):
    """A PortAudio input whose callback only copies into a preallocated ring buffer.

    A device missing at the start is an EdgeAscError. Once running, a lost device (unplugged,
    the sound server restarted: the stream stops) or a stalled one (no audio for
    `stall_seconds`) does not end the stream: `read` returns empty blocks while the device is
    reopened with exponential backoff (`retry`: first and longest wait), PortAudio initialised
    afresh each time so that it sees a restarted server or a replugged card. The loss and the
    recovery are reported through `take_notices`, the recovery counted in `reconnects`.
    """

    def __init__(
        self,
        device: str | int | None = None,
        rate: int | None = None,
        channels: int = 1,
        buffer_seconds: float = 10.0,
        latency: str | float = "high",
        retry: tuple[float, float] = (0.5, 30.0),
        stall_seconds: float = 5.0,
    ) -> None:
        self._sd = import_sounddevice()
        if channels <= 0:
            raise EdgeAscError("--channels must be positive")
        self._spec, self._wanted_rate, self._wanted_channels = device, rate, channels
        self._buffer_seconds, self._latency = buffer_seconds, latency
        self.retry, self.stall_seconds = retry, stall_seconds
        self._notices: list[str] = []
        self._reconnects = 0
        self._closed_overflows = 0  # overflows of the captures before the current one
        self._capture: Capture | None = None
        self._lost_at = self._next_try = 0.0
        self._delay = retry[0]
        self._attempts = 0
        self._can_reinit = True
        self._open()

    def _open(self) -> None:
        sd = self._sd
        info = resolve_device(sd, self._spec)
        channels = min(self._wanted_channels, int(info["max_input_channels"]))
        rate = choose_rate(sd, info, channels, self._wanted_rate)
        try:
            capture = Capture(sd, info, rate, channels, self._buffer_seconds, self._latency)
        except (sd.PortAudioError, ValueError) as err:
            raise EdgeAscError(f"cannot open input device {info['name']!r}: {err}") from err
        self.rate, self.channels = rate, channels
        self.description = f"{info['name']} ({rate} Hz, {channels} ch)"
        self._min_frames = max(1, rate // 20)  # >= 50 ms of audio until the consumer says
        self._capture = capture
        self._seen, self._progress_at = 0, time.monotonic()

    @property
    def overflows(self) -> int:
        current = self._capture.overflows if self._capture is not None else 0
        return self._closed_overflows + current

    @property
    def reconnects(self) -> int:
        return self._reconnects

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def want(self, frames: int) -> None:
        # Each block wakes the whole loop with cold caches: on an idle machine a real-time
        # listener spent 1.47 % of a core in 0.1-s blocks and 0.94 % in blocks of one hop.
        self._min_frames = max(1, int(frames))

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        capture = self._capture
        if capture is None:
            return self._reopen(timeout)
        # Never wait for more than half the ring holds: the rest is room for the callback.
        need = min(self._min_frames, max(1, capture.ring.capacity // 2))
        deadline = time.monotonic() + timeout
        while capture.ring.available < need:
            now = time.monotonic()
            if capture.ring.written != self._seen:
                self._seen, self._progress_at = capture.ring.written, now
            lost = None
            if not capture.stream.active:
                lost = "the input stream stopped"
            elif now - self._progress_at > self.stall_seconds:
                lost = f"no audio for {self.stall_seconds:g} s"
            if lost is not None:
                if capture.ring.available:  # what arrived goes out before any verdict
                    break
                return self._lose(lost)
            left = deadline - now
            if left <= 0:
                return self._empty()  # less than a block: it waits for the next read
            deficit = (need - capture.ring.available) / self.rate
            time.sleep(min(left, max(deficit, 0.005)))
        return capture.ring.read()

    def _empty(self) -> np.ndarray:
        return np.empty((0, self.channels), dtype=np.float32)

    def _lose(self, reason: str) -> np.ndarray:
        capture, self._capture = self._capture, None
        assert capture is not None
        self._closed_overflows += capture.overflows
        # PortAudio can be initialised afresh only once no stream of it is left open.
        self._can_reinit = capture.close(wait=2.0)
        now = time.monotonic()
        self._lost_at, self._attempts = now, 0
        self._delay = self.retry[0]
        self._next_try = now + self._delay
        self._notices.append(
            f"warning: lost the input device {self.description} ({reason}); reopening it, "
            f"first after {self.retry[0]:g} s, then at most every {self.retry[1]:g} s"
        )
        return self._empty()

    def _reinitialise(self) -> None:
        """Terminate and initialise PortAudio: its device list is read once, at initialisation."""
        terminate = getattr(self._sd, "_terminate", None)
        initialize = getattr(self._sd, "_initialize", None)
        if not (self._can_reinit and terminate and initialize):
            return
        with contextlib.suppress(self._sd.PortAudioError):  # not initialised: nothing to end
            terminate()
        initialize()

    def _reopen(self, timeout: float) -> np.ndarray:
        now = time.monotonic()
        if now < self._next_try:
            time.sleep(min(timeout, self._next_try - now))
            return self._empty()
        self._attempts += 1
        try:
            self._reinitialise()
            self._open()
        except (EdgeAscError, self._sd.PortAudioError, OSError) as err:
            if self._delay < self.retry[1] <= 2 * self._delay:
                self._notices.append(
                    f"still no input device after {time.monotonic() - self._lost_at:.0f} s "
                    f"({self._attempts} attempts; last: {err}); retrying every "
                    f"{self.retry[1]:g} s"
                )
            self._delay = min(2 * self._delay, self.retry[1])
            self._next_try = time.monotonic() + self._delay
            return self._empty()
        self._reconnects += 1
        self._notices.append(
            f"the input device is back after {time.monotonic() - self._lost_at:.1f} s "
            f"({self._attempts} attempts): {self.description}"
        )
        return self._empty()

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.close()
            self._closed_overflows += capture.overflows
