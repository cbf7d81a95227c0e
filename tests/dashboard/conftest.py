"""Shared by the dashboard tests: real replayed clips, real events in a real SQLite history, a
dashboard server in this process or a real listener serving one, and a raw HTTP client."""

from __future__ import annotations

import base64
import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from listener import Listener
from replay import SEQUENCE, join_clips, predictions

from edge_asc.dashboard.access import Access
from edge_asc.dashboard.api import Dashboard
from edge_asc.dashboard.clips import ClipFolder
from edge_asc.dashboard.feed import LiveFeed, Moment
from edge_asc.dashboard.server import DashboardServer
from edge_asc.dashboard.store import HistoryStore
from edge_asc.events import EventDetector
from edge_asc.history import History
from edge_asc.model import Model

TOKEN = "s3cret-token-for-tests"
URL = re.compile(r"dashboard (?:of \S+ )?at http://127\.0\.0\.1:(\d+)/")


@pytest.fixture(scope="session")
def model() -> Model:
    return Model()


@pytest.fixture(scope="session")
def sequence(shared_data, tmp_path_factory) -> Path:
    """Four real UrbanSound8K clips of four classes, each followed by 2 s of silence (24 s)."""
    path = tmp_path_factory.mktemp("dashboard") / "sequence.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE[:4]], path)
    return path


@pytest.fixture(scope="session")
def replayed(sequence, model) -> list:
    """Every prediction `listen --from-file SEQUENCE --fast` makes."""
    return predictions(sequence, model)


@pytest.fixture
def history(tmp_path, replayed) -> Path:
    """A real history file holding the events the listener's detector finds in the sequence."""
    path = tmp_path / "history.db"
    detector = EventDetector()
    with History(path) as store:
        for pred in replayed:
            for event in detector.push(pred):
                store.add_event(event)
        for event in detector.flush():
            store.add_event(event)
    return path


@dataclass
class Served:
    server: DashboardServer
    feed: LiveFeed
    port: int


@pytest.fixture
def serve_board(model, history, replayed) -> Iterator:
    """Start a server in this process over the history (and a feed holding the last window)."""
    started: list[DashboardServer] = []

    def start(
        token: str | None = None, clips: Path | None = None, client_timeout: float = 10.0
    ) -> Served:
        feed = LiveFeed(3)
        feed.publish(Moment(replayed[-1], None), [])
        board = Dashboard(
            feed,
            HistoryStore(history),
            list(model.labels),
            model.card.to_json(),
            model.id,
            ClipFolder(clips) if clips else None,
        )
        server = DashboardServer(
            ("127.0.0.1", 0), board, Access(token), "test", client_timeout=client_timeout
        )
        server.start()
        started.append(server)
        return Served(server, feed, server.server_address[1])

    yield start
    for server in started:
        server.stop()


def get(
    port: int, path: str, token: str | None = None, scheme: str = "Basic", method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One raw request (the path sent exactly as given, never normalised)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {}
    if token is not None:
        secret = base64.b64encode(f"me:{token}".encode()).decode() if scheme == "Basic" else token
        headers["Authorization"] = f"{scheme} {secret}"
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def dashboard_port(listener: Listener, timeout: float = 60) -> int:
    """The port a listener started with --http HOST:0 serves on (from its stderr)."""
    listener.wait_for(lambda: URL.search(listener.stderr) is not None, timeout, "the dashboard")
    match = URL.search(listener.stderr)
    assert match is not None
    return int(match.group(1))


@pytest.fixture
def labels() -> list[str]:
    return [label for _, label in SEQUENCE[:4]]
