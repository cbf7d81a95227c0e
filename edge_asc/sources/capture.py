"""One open PortAudio input stream whose callback only copies into a ring buffer."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from edge_asc.ringbuffer import RingBuffer


class Capture:
    """One open PortAudio input stream and the ring its callback fills; a new pair per (re)open,
    so a stream abandoned after a stall can never write into its successor's ring."""

    def __init__(
        self,
        sd: Any,
        info: dict[str, Any],
        rate: int,
        channels: int,
        buffer_seconds: float,
        latency: str | float,
    ) -> None:
        self.ring = RingBuffer(max(1, round(buffer_seconds * rate)), channels)
        self.status_overflows = 0
        self.stream = sd.InputStream(
            device=info["index"],
            channels=channels,
            samplerate=rate,
            dtype="float32",
            latency=latency,
            callback=self.callback,
        )
        self.stream.start()

    def callback(self, indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        # Real-time thread: count, copy, return. Nothing else belongs here.
        if status and status.input_overflow:
            self.status_overflows += 1
        self.ring.write(indata)

    @property
    def overflows(self) -> int:
        return self.status_overflows + self.ring.overflows

    def close(self, wait: float | None = None) -> bool:
        """Stop and close; with `wait`, give up after that many seconds (a stalled sound server
        blocks the close until it answers). Returns whether the stream was closed."""
        stream = self.stream

        def shut() -> None:
            # A lost device may refuse to stop; closing still releases the stream.
            with contextlib.suppress(Exception):
                stream.stop()
            with contextlib.suppress(Exception):
                stream.close()

        if wait is None:
            shut()
            return True
        worker = threading.Thread(target=shut, name="edge-asc-close", daemon=True)
        worker.start()
        worker.join(wait)
        return not worker.is_alive()
