"""What `edge-asc listen --http` and `edge-asc serve` call: the options checked before anything
is opened, the server bound before the device (a port in use fails at once), the watchers the
listener's event sink feeds."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_asc.dashboard.access import Access, check_token, parse_address
from edge_asc.dashboard.api import Dashboard
from edge_asc.dashboard.clips import AudioRing, ClipFolder, ClipRecorder, TappedSource, clips_folder
from edge_asc.dashboard.feed import FeedWatcher, LiveFeed
from edge_asc.dashboard.server import DashboardServer
from edge_asc.dashboard.store import EventStore, HistoryStore, MemoryStore
from edge_asc.errors import EdgeAscError, warn

if TYPE_CHECKING:
    from edge_asc.model import Model
    from edge_asc.sources import Source


@dataclass(frozen=True)
class HttpOptions:
    host: str
    port: int
    token: str | None


@dataclass(frozen=True)
class ClipOptions:
    max_mb: float
    keep_days: float


def http_options(address: str | None, token: str | None) -> HttpOptions | None:
    """--http and --http-token, checked (None: no --http)."""
    if address is None:
        if token is not None:
            raise EdgeAscError("--http-token applies to --http only")
        return None
    host, port = parse_address(address)
    check_token(host, token)
    return HttpOptions(host, port, token)


def clip_options(
    clips: bool, db: Path | None, max_mb: float, keep_days: float, defaults: tuple[float, float]
) -> ClipOptions | None:
    """--clips and its retention, checked (None: no clips)."""
    if not clips:
        if (max_mb, keep_days) != defaults:
            raise EdgeAscError("--clips-max-mb and --clips-keep-days apply to --clips only")
        return None
    if db is None:
        raise EdgeAscError("--clips saves each event's audio next to the history: add --db PATH")
    return ClipOptions(max_mb, keep_days)


def _board(feed: LiveFeed, store: EventStore, model: Model, clips: ClipFolder | None) -> Dashboard:
    return Dashboard(feed, store, list(model.labels), model.card.to_json(), model.id, clips)


class ListenDashboard:
    """The dashboard and the clips of one listener."""

    def __init__(
        self,
        http: HttpOptions | None,
        clips: ClipOptions | None,
        model: Model,
        top_k: int,
        db: Path | None,
    ) -> None:
        self.feed = LiveFeed(top_k)
        store: EventStore = HistoryStore(db) if db is not None else MemoryStore(self.feed)
        self.folder = self.ring = None
        if clips is not None and db is not None:
            self.folder = ClipFolder(clips_folder(db), round(clips.max_mb * 2**20), clips.keep_days)
            self.folder.open()
            self.ring = AudioRing()
        self.server = None
        if http is not None:
            board = _board(self.feed, store, model, self.folder)
            self.server = DashboardServer(
                (http.host, http.port), board, Access(http.token), socket.gethostname()
            )

    def watchers(self) -> list[Any]:
        """For the event sink: the feed (whose close stops the server) and the clip recorder."""
        found: list[Any] = []
        if self.server is not None:
            found.append(FeedWatcher(self.feed, self.server.stop))
        if self.folder is not None and self.ring is not None:
            found.append(ClipRecorder(self.folder, self.ring))
        return found

    def tap(self, source: Source) -> Source:
        return TappedSource(source, self.ring) if self.ring is not None else source

    def start(self) -> None:
        if self.server is not None:
            self.server.start()
            warn(f"dashboard at {self.server.url}")

    def close(self) -> None:
        """Only for a failure before the sink took the watchers."""
        if self.server is not None:
            self.server.server_close()


def serve(db: Path, http: HttpOptions, model: Model, stop: threading.Event) -> None:
    """`edge-asc serve`: the history's pages until `stop` is set (SIGTERM, Ctrl-C)."""
    store = HistoryStore(db)
    store.check()
    folder = clips_folder(db)
    clips = ClipFolder(folder) if folder.is_dir() else None
    feed = LiveFeed(live=False)
    server = DashboardServer(
        (http.host, http.port),
        _board(feed, store, model, clips),
        Access(http.token),
        socket.gethostname(),
    )
    server.start()
    warn(f"dashboard of {db} at {server.url}")
    try:
        while not stop.wait(3600):
            pass
    finally:
        server.stop()
