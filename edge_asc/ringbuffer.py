"""A preallocated single-producer, single-consumer ring buffer of audio frames.

The producer is the PortAudio callback, which must not allocate buffers, do I/O or wait on a
lock: `write` only copies into storage allocated once, in at most two slice assignments, and
counts what did not fit. The consumer (the pipeline's thread) reads copies out.

No lock is needed: each side advances only its own monotonic counter (`_written` by the
producer, `_read` by the consumer), and the producer publishes `_written` only after the
samples are in place. Under CPython's GIL an int attribute store is atomic, so the consumer
never sees a count ahead of its data.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity FIFO of (frames, channels) float32 audio."""

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = capacity
        self.channels = channels
        self._buf = np.zeros((capacity, channels), dtype=np.float32)
        self._written = 0  # frames ever written (producer's counter)
        self._read = 0  # frames ever read (consumer's counter)
        self.overflows = 0  # writes that did not fit whole (producer's counter)
        self.dropped = 0  # frames lost to those overflows

    @property
    def written(self) -> int:
        """Frames ever written: the consumer watches it move to know the producer is alive."""
        return self._written

    @property
    def available(self) -> int:
        """Frames waiting to be read."""
        return self._written - self._read

    def write(self, block: np.ndarray) -> int:
        """Copy (frames, channels) into the buffer; drop what does not fit. Returns frames kept.

        Safe to call from an audio callback: no allocation of sample storage, no lock, no I/O.
        When the consumer falls behind, the newest samples are dropped (the producer may not
        move the consumer's read position) and the overflow is counted.
        """
        n = block.shape[0]
        free = self.capacity - (self._written - self._read)
        if n > free:
            self.overflows += 1
            self.dropped += n - free
            n = free
            if n == 0:
                return 0
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = block[:first]
        if n > first:
            self._buf[: n - first] = block[first:n]
        self._written += n
        return n

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Up to `max_frames` of the waiting frames (all of them by default), as a new array."""
        n = self.available
        if max_frames is not None:
            n = min(n, max_frames)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        if n > first:
            out = np.concatenate((self._buf[start:], self._buf[: n - first]))
        else:
            out = self._buf[start : start + n].copy()
        self._read += n
        return out
