"""Access and robustness: the refusal beyond loopback without a token, 401 on every route
without it, no path outside the clips folder, 200 concurrent connections, clients that never
send or never read. Loopback only; every wait has a deadline, so each test ends by itself.

A server with a token behaves the same whatever address it is bound to (the token is checked on
every request before anything else), so the 401s are checked on 127.0.0.1, not on an address
the rest of the network could reach while the tests run."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import TOKEN, get
from listener import edge_asc

from edge_asc.dashboard.clips import ClipFolder, clips_folder
from edge_asc.dashboard.feed import Moment
from edge_asc.history import read_events

ROUTES = (
    "/", "/today", "/events", "/model", "/static/dashboard.js", "/static/dashboard.css",
    "/api/now", "/api/events", "/api/events?label=siren&since=1h", "/api/today",
    "/api/today.svg", "/api/model", "/api/live", "/api/nothing", "/nothing",
)  # fmt: skip


@pytest.fixture
def clips(history, sequence) -> tuple[Path, str]:
    """The clips folder of the history with one real clip (the first event's audio)."""
    folder = ClipFolder(clips_folder(history))
    folder.open()
    event = read_events(history)[0]
    audio, rate = sf.read(sequence, dtype="float32", frames=4 * 16000)
    folder.write(event, audio, rate)
    return folder.folder, event.id


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--http", "0.0.0.0:8080"], "can be reached from other machines: set a token"),
        (["--http", "0.0.0.0:8080", "--http-token", "short"], "at least 8 characters"),
        (["--clips"], "--clips saves each event's audio next to the history: add --db"),
    ],
)
def test_listen_refuses_in_one_line(sequence, args, expected):
    run = edge_asc("listen", "--from-file", str(sequence), "--fast", "--display", "none", *args)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_serve_refuses_beyond_loopback_without_a_token(history):
    run = edge_asc("serve", "--db", str(history), "--http", "0.0.0.0:8080")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--http-token" in run.stderr, run.stderr


def test_401_on_every_route_without_the_token(serve_board, clips):
    folder, clip_id = clips
    port = serve_board(TOKEN, folder).port
    routes = [*ROUTES, f"/clips/{clip_id}.flac", "/clips/../history.db"]
    for path in routes:
        for method in ("GET", "HEAD", "POST"):
            for token, scheme in ((None, "Basic"), ("wrong-token", "Basic"), ("wrong", "Bearer")):
                status, headers, body = get(port, path, token, scheme, method)
                assert status == 401, (method, path, token)
                assert headers["WWW-Authenticate"].startswith("Basic realm=")
                assert b"edge-asc-ensemble" not in body and b"dog_bark" not in body
    for path in [*ROUTES[:-3], f"/clips/{clip_id}.flac"]:  # not the stream, nor the 404s
        for scheme in ("Basic", "Bearer"):
            status, _, _ = get(port, path, TOKEN, scheme)
            assert status == 200, (path, scheme)


def test_without_a_token_only_a_loopback_host_name_is_served(serve_board):
    port = serve_board().port
    assert get(port, "/api/now")[0] == 200
    for host in ("evil.example", "evil.example:80", "192.168.1.10", "127.0.0.1.evil.example"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(f"GET /api/now HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = conn.recv(1024)
        assert head.startswith(b"HTTP/1.0 403"), (host, head)  # DNS rebinding gets nothing


def test_no_path_outside_the_clips_folder(serve_board, clips, history):
    folder, clip_id = clips
    (folder / "link.flac").symlink_to(history)  # a link named like a clip, out of the folder
    (folder / "folder.flac").mkdir()
    (folder / ".writing-x.flac").write_bytes(b"half a clip")
    port = serve_board(None, folder).port
    status, headers, body = get(port, f"/clips/{clip_id}.flac")
    assert status == 200 and headers["Content-Type"] == "audio/flac"
    assert body == (folder / f"{clip_id}.flac").read_bytes()
    attempts = (
        "/clips/../history.db", "/clips/..%2Fhistory.db", "/clips/%2e%2e/history.db",
        "/clips/%2e%2e%2fhistory.db", "/clips/..%5chistory.db", "/clips//etc/passwd",
        "/clips/%2Fetc%2Fpasswd", "/clips/link.flac", "/clips/folder.flac", "/clips/",
        "/clips", "/clips/.writing-x.flac", f"/clips/{clip_id}.flac/..",
        f"/clips/../history.clips/{clip_id}.flac", "/clips/" + "a" * 300 + ".flac",
        "/clips/%00.flac", "/static/../server.py", "/static/", "/static/%2e%2e/server.py",
        "/static/../../history.py", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
    )  # fmt: skip
    for path in attempts:
        status, _, body = get(port, path)
        assert status == 404, path
        assert b"SQLite" not in body and b"root:" not in body and b"import" not in body


def test_200_concurrent_connections(serve_board):
    port = serve_board().port
    results: list[int] = []
    start = threading.Barrier(200)

    def one(path: str) -> None:
        start.wait(timeout=30)
        results.append(get(port, path)[0])

    threads = [
        threading.Thread(target=one, args=(p,))
        for p in ("/api/now", "/api/events", "/api/today.svg", "/events") * 50
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [200] * 200
    assert get(port, "/api/now")[0] == 200  # and it goes on serving


def test_clients_that_never_send_are_dropped(serve_board):
    port = serve_board(client_timeout=1.0).port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(200)]
    try:
        began = time.monotonic()
        assert get(port, "/api/now")[0] == 200  # served while 200 connections say nothing
        for conn in idle:  # each dropped by the server, not left holding a thread
            assert conn.recv(1024) == b""
        assert time.monotonic() - began < 30
    finally:
        for conn in idle:
            conn.close()


def test_a_live_page_that_never_reads_is_dropped(serve_board, replayed):
    served = serve_board(client_timeout=1.0)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", served.port))
    stalled.sendall(b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    stop = threading.Event()

    def listener_windows() -> None:  # the listener goes on making windows as fast as it can
        while not stop.is_set():
            served.feed.publish(Moment(replayed[len(replayed) // 2], None), [])
            time.sleep(0.001)

    feeder = threading.Thread(target=listener_windows)
    feeder.start()
    try:
        deadline = time.monotonic() + 30
        dropped = False
        while not dropped and time.monotonic() < deadline:
            time.sleep(3.0)  # not read for 3 client timeouts; then see whether it was closed
            assert get(served.port, "/api/now")[0] == 200  # others are served meanwhile
            stalled.setblocking(False)
            try:
                while chunk := stalled.recv(1 << 20):
                    del chunk
                dropped = True  # EOF: the server closed it
            except BlockingIOError:
                pass  # still open; drained now, so the next stall starts from empty
            except ConnectionResetError:
                dropped = True
            stalled.setblocking(True)
        assert dropped, "the server kept a client that never reads"
    finally:
        stop.set()
        feeder.join()
        stalled.close()
