"""An audio file as a live source, replayed in real time or as fast as possible."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge_asc.audio_io import decode_errors, open_audio
from edge_asc.errors import EdgeAscError
from edge_asc.sources.base import Source


class FileSource(Source):
    """Any file soundfile reads, replayed in real time (like a microphone) or as fast as possible.

    Real-time pacing releases each block only once its last sample "has been recorded", measured
    from the first read, so a replay exercises the same timing as a live capture. The file is
    checked when opened (audio_io.open_audio); NaN or infinite samples are the stream's to
    replace, as they would be from a microphone.
    """

    def __init__(
        self, path: str | Path, realtime: bool = True, block_seconds: float | None = None
    ) -> None:
        self.path = Path(path)
        self._file = open_audio(self.path)
        self.rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.realtime = realtime
        # In real time the stream says what each window needs (want); big blocks let --fast
        # batch the model.
        seconds = block_seconds if block_seconds is not None else (0.1 if realtime else 8.0)
        self._block = max(1, round(seconds * self.rate))
        # soundfile seeks three times around every read (FLAC seeks cost a frame's decode), so
        # small blocks are cut from at least a second decoded at a time.
        self._decode = max(self._block, self.rate)
        self._pending = np.empty((0, self.channels), dtype=np.float32)
        self._delivered = 0
        self._start: float | None = None
        self.description = f"{self.path.name} ({'real time' if realtime else 'fast'})"

    def want(self, frames: int) -> None:
        if self.realtime:  # as from a microphone; --fast keeps its big blocks for batching
            self._block = max(1, int(frames))

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        if self._file.closed:
            return None
        if self.realtime:
            now = time.monotonic()
            if self._start is None:
                self._start = now
            due = self._start + (self._delivered + self._block) / self.rate
            if now < due:
                time.sleep(min(due - now, timeout))
                if time.monotonic() < due:
                    return np.empty((0, self.channels), dtype=np.float32)
        while self._pending.shape[0] < self._block:
            more = self._decoded()
            if not more.shape[0]:
                break
            self._pending = np.concatenate([self._pending, more])
        block, self._pending = self._pending[: self._block], self._pending[self._block :]
        if block.shape[0] == 0:
            return None
        self._delivered += block.shape[0]
        return block

    def _decoded(self) -> np.ndarray:
        try:
            return self._file.read(self._decode, dtype="float32", always_2d=True)
        except decode_errors() as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EdgeAscError(f"cannot read audio {self.path}: {reason}") from err

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
