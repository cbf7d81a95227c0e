"""The interface every live audio source implements: float32 blocks at the source's own rate.

Every source hands the consumer (frames, channels) float32 blocks at its own rate; downmixing
and resampling happen downstream, in the consumer, never in an audio callback. `read` waits at
most `timeout` seconds, so the consumer can notice a stop request (SIGTERM) between reads, and
returns None once the source is exhausted.
"""

from __future__ import annotations

import numpy as np


class Source:
    """Base class: a context manager yielding float32 (frames, channels) blocks from `read`."""

    rate: int
    channels: int
    description: str = "audio"

    @property
    def overflows(self) -> int:
        """Input overflows so far (samples the source had to drop); 0 where none can happen."""
        return 0

    @property
    def reconnects(self) -> int:
        """Times the device was lost and opened again: the audio is not continuous there."""
        return 0

    def take_notices(self) -> list[str]:
        """Messages about the source's faults and recoveries since the last call (for stderr)."""
        return []

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """The next block, possibly empty (nothing yet); None at the end of the stream."""
        raise NotImplementedError

    def want(self, frames: int) -> None:
        """The consumer's next window needs `frames` more: a live source holds its next block
        until they are there, so the listener wakes once per window, not once per trickle."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
