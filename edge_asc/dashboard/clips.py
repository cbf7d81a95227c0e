"""Event audio clips (`listen --clips`, off by default): the sound around each event as FLAC in
a folder next to the history, so the events page can play what was heard.

A privacy choice: without --clips no audio ever reaches the disk. With it:
- the source is tapped (`TappedSource`): each block read is also kept, downmixed, in a ring of
  the last RING_SECONDS, in the listener's thread, so cutting a clip needs no lock;
- when an event ends, its clip (1 s before its start to 1 s after its end, at most
  MAX_CLIP_SECONDS) is cut from the ring and written by a worker thread, so a slow SD card never
  holds up the audio; to a hidden temporary name, then renamed: a kill leaves no half clip
  under a clip's name (and the leftover temporary file is removed at the next start);
- the file is `<event id>.flac`, the event's own id in the history; its class is the FLAC title,
  and its software tag says edge-asc: retention never counts or deletes a file without it;
- retention after each clip: older than `keep_days` deleted, then, while the folder is over
  `max_bytes`, the oldest clip of the class with the most clips; nothing is saved while the disk
  is nearly full (said once, and again when it saves again).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import stat
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from edge_asc.errors import EdgeAscError, warn
from edge_asc.events import Event
from edge_asc.sources import Source

if TYPE_CHECKING:
    from edge_asc.prediction import Prediction

MARGIN_S = 1.0
MAX_CLIP_SECONDS = 30.0
RING_SECONDS = MAX_CLIP_SECONDS + 15.0  # a clip may end up to the event gap after its last window
MAX_WAITING = 16  # clips waiting for the disk; more are dropped (said once)
DISK_FREE_FRACTION = 0.05  # below this share of the disk free (or DISK_FREE_BYTES), no clips
DISK_FREE_BYTES = 64 * 2**20
CLIP_NAME = re.compile(r"[0-9A-Za-z_-]{1,64}\.flac")
TEMP_PREFIX = ".writing-"
SOFTWARE = "edge-asc"  # the tag that marks a clip as ours: retention deletes nothing else


def clips_folder(db: Path) -> Path:
    """Where the clips of the history `db` lie: history.db -> history.clips/."""
    return db.with_suffix(".clips")


class AudioRing:
    """The last `seconds` of mono audio as blocks, each with its stream time."""

    def __init__(self, seconds: float = RING_SECONDS) -> None:
        self.seconds = seconds
        self._blocks: deque[tuple[float, int, np.ndarray]] = deque()  # (start s, rate, samples)
        self._end = 0.0  # stream seconds read so far

    def add(self, block: np.ndarray, rate: int) -> None:
        if not block.shape[0]:
            return
        mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block
        self._blocks.append((self._end, rate, mono.astype(np.float32, copy=True)))
        self._end += mono.shape[0] / rate
        while self._blocks and self._blocks[0][0] + self._blocks[0][2].shape[0] / rate < (
            self._end - self.seconds
        ):
            self._blocks.popleft()

    def cut(self, start: float, end: float) -> tuple[np.ndarray, int] | None:
        """The samples of [start, end) stream seconds at the latest rate (None: none held)."""
        if not self._blocks:
            return None
        rate = self._blocks[-1][1]
        parts = []
        for at, block_rate, samples in self._blocks:
            if block_rate != rate:
                continue  # before a device came back at another rate
            first = max(0, round((start - at) * rate))
            last = min(samples.shape[0], round((end - at) * rate))
            if last > first:
                parts.append(samples[first:last])
        return (np.concatenate(parts), rate) if parts else None


class TappedSource(Source):
    """A source whose every block is also kept in a ring (the clips' audio)."""

    def __init__(self, inner: Source, ring: AudioRing) -> None:
        self.inner, self.ring = inner, ring
        self.description = inner.description

    @property
    def rate(self) -> int:  # type: ignore[override]
        return self.inner.rate

    @property
    def channels(self) -> int:  # type: ignore[override]
        return self.inner.channels

    @property
    def overflows(self) -> int:
        return self.inner.overflows

    @property
    def reconnects(self) -> int:
        return self.inner.reconnects

    def take_notices(self) -> list[str]:
        return self.inner.take_notices()

    def want(self, frames: int) -> None:
        self.inner.want(frames)

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        block = self.inner.read(timeout)
        if block is not None:
            self.ring.add(block, self.inner.rate)
        return block

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> TappedSource:
        self.inner.__enter__()
        return self


@dataclass(frozen=True)
class ClipRecord:
    label: str
    mtime: float
    size: int


class ClipFolder:
    """The clips on disk: safe lookup for the server, writing and retention for the recorder."""

    def __init__(
        self,
        folder: Path,
        max_bytes: int = 500 * 2**20,
        keep_days: float = 30.0,
        notify: Callable[[str], None] = warn,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder, self.max_bytes, self.keep_days = folder, max_bytes, keep_days
        self.notify, self.clock = notify, clock
        self._index: dict[str, ClipRecord] = {}
        self._disk_full = False

    def open(self) -> None:
        """Create or scan the folder (EdgeAscError in one line); drop temporary leftovers."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for path in self.folder.iterdir():
                if path.name.startswith(TEMP_PREFIX) and path.is_file():
                    path.unlink()
                elif CLIP_NAME.fullmatch(path.name) and path.is_file():
                    record = self._record(path)
                    if record is not None:
                        self._index[path.stem] = record
        except FileExistsError:
            raise EdgeAscError(f"the clips folder {self.folder} is a file") from None
        except OSError as err:
            raise EdgeAscError(
                f"cannot use the clips folder {self.folder}: {err.strerror}"
            ) from err

    def _record(self, path: Path) -> ClipRecord | None:
        """The clip's class, age and size; None for a file edge-asc did not write (never
        counted, never deleted)."""
        info = path.stat()
        try:
            with sf.SoundFile(path) as clip:
                ours = (clip.software or "").startswith(SOFTWARE)
                label = clip.title or "?"
        except (sf.LibsndfileError, RuntimeError):
            return None
        return ClipRecord(label, info.st_mtime, info.st_size) if ours else None

    def has(self, event_id: str) -> bool:
        return event_id in self._index or (self.folder / f"{event_id}.flac").is_file()

    def read(self, name: str) -> bytes | None:
        """A clip's bytes by file name; None for anything that is not a clip of the folder (a
        path, a link, a directory, a name that is no clip's)."""
        if not CLIP_NAME.fullmatch(name):
            return None
        try:
            fd = os.open(self.folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            with os.fdopen(os.dup(fd), "rb") as fh:
                return fh.read()
        finally:
            os.close(fd)

    def disk_nearly_full(self) -> bool:
        try:
            usage = shutil.disk_usage(self.folder)
        except OSError:
            return True
        return usage.free < max(DISK_FREE_FRACTION * usage.total, DISK_FREE_BYTES)

    def write(self, event: Event, samples: np.ndarray, rate: int) -> None:
        """Save one clip (temporary name, then renamed) and apply the retention."""
        if self.disk_nearly_full():
            if not self._disk_full:
                self._disk_full = True
                self.notify(f"not saving event clips: the disk of {self.folder} is nearly full")
            return
        if self._disk_full:
            self._disk_full = False
            self.notify(f"saving event clips again in {self.folder}")
        final = self.folder / f"{event.id}.flac"
        temp = self.folder / f"{TEMP_PREFIX}{event.id}.flac"
        try:
            with sf.SoundFile(temp, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
                out.title, out.software = event.label, SOFTWARE
                out.write(np.clip(samples, -1.0, 1.0))
            temp.replace(final)
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            with contextlib.suppress(OSError):
                temp.unlink()
            self.notify(f"cannot save the clip of event {event.id} in {self.folder}: {err}")
            return
        record = self._record(final)
        if record is not None:
            self._index[event.id] = record
        self.prune()

    def prune(self) -> int:
        """Apply the retention; the number of clips deleted."""
        deleted = 0
        cutoff = self.clock() - self.keep_days * 86_400
        for clip_id, rec in list(self._index.items()):
            if rec.mtime < cutoff:
                deleted += self._delete(clip_id)
        while sum(r.size for r in self._index.values()) > self.max_bytes and self._index:
            common = Counter(r.label for r in self._index.values()).most_common()
            top = max(n for _, n in common)
            label = sorted(name for name, n in common if n == top)[0]
            oldest = min(
                (i for i, r in self._index.items() if r.label == label),
                key=lambda i: self._index[i].mtime,
            )
            deleted += self._delete(oldest)
        return deleted

    def _delete(self, clip_id: str) -> int:
        self._index.pop(clip_id, None)
        try:
            (self.folder / f"{clip_id}.flac").unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            self.notify(f"cannot delete the clip {clip_id} in {self.folder}: {err.strerror}")
            return 0
        return 1


class ClipRecorder:
    """The EventSink watcher that saves each ended event's clip (in its own thread)."""

    def __init__(self, folder: ClipFolder, ring: AudioRing, notify: Callable[[str], None] = warn):
        self.folder, self.ring, self.notify = folder, ring, notify
        self._queue: queue.Queue[tuple[Event, np.ndarray, int] | None] = queue.Queue(MAX_WAITING)
        self._dropped = 0
        self._thread = threading.Thread(target=self._work, name="edge-asc-clips", daemon=True)
        self._thread.start()

    def window(self, pred: Prediction | None, ended: list[Event], current: Event | None) -> None:
        for event in ended:
            start = event.start_offset_s - MARGIN_S
            end = min(
                event.start_offset_s + event.duration_s + MARGIN_S,
                start + MAX_CLIP_SECONDS,
            )
            cut = self.ring.cut(start, end)
            if cut is None:
                continue
            try:
                self._queue.put_nowait((event, *cut))
            except queue.Full:
                self._dropped += 1
                if self._dropped == 1:
                    self.notify("event clips are coming faster than the disk takes them: dropped")

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            self.folder.write(*item)

    def close(self) -> None:
        """Write what waits, then stop the thread."""
        self._queue.put(None)
        self._thread.join()
