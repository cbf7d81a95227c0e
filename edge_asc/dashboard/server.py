"""The dashboard's HTTP server: the standard library's ThreadingHTTPServer, in its own thread.

Why not a framework: on the listener's Pi the whole server costs ~1 MiB of RSS against ~14 MiB
for aiohttp (measured, docs/dashboard.md), and a page or two at a time is all it serves. What a
framework would otherwise bound is bounded here:
- at most MAX_HANDLERS requests are handled at once; more connections wait in the listen
  backlog (REQUEST_QUEUE) instead of each getting a thread;
- every socket has a timeout: a client that never sends its request, or never reads the
  answer, is dropped after `client_timeout` seconds, its thread freed;
- one request per connection (HTTP/1.0), so no idle keep-alive connection holds a thread;
- at most MAX_STREAMS live feeds at once (503 beyond); each writes straight to its socket with
  a small send buffer, so a stalled browser costs a blocked thread until the timeout and never
  a growing queue in memory.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edge_asc.dashboard import api
from edge_asc.dashboard.access import Access
from edge_asc.dashboard.api import Dashboard, dumps
from edge_asc.dashboard.pages import PAGES, STATIC, page_html, static_file
from edge_asc.errors import EdgeAscError, warn
from edge_asc.events import Event

MAX_HANDLERS = 128
REQUEST_QUEUE = 512
MAX_STREAMS = 16
KEEPALIVE_S = 15.0  # a comment line on an idle live feed, so proxies and browsers keep it
CLIENT_TIMEOUT_S = 10.0
POLL_S = 5.0
STREAM_SNDBUF = 32 * 1024
CLIP_WAIT_S = 3.0  # a live event waits this long at most for its clip
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
QUIET_ERRORS = (ConnectionError, TimeoutError, OSError)  # a client gone or too slow


class DashboardServer(ThreadingHTTPServer):
    """Serves `board` to those `access` lets in (see the module's docstring)."""

    daemon_threads = True
    request_queue_size = REQUEST_QUEUE

    def __init__(
        self,
        address: tuple[str, int],
        board: Dashboard,
        access: Access,
        name: str = "",
        client_timeout: float = CLIENT_TIMEOUT_S,
    ) -> None:
        self.board, self.access, self.name = board, access, name
        self.client_timeout = client_timeout
        self.stopping = threading.Event()
        self._handlers = threading.BoundedSemaphore(MAX_HANDLERS)
        self._streams = threading.BoundedSemaphore(MAX_STREAMS)
        self._thread: threading.Thread | None = None
        host, port = address
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        except (socket.gaierror, UnicodeError) as err:
            raise EdgeAscError(f"--http: cannot resolve {host!r}: {err}") from None
        self.address_family = family
        try:
            super().__init__(address, Handler)
        except OSError as err:
            raise EdgeAscError(
                f"cannot serve the dashboard on {host}:{port}: {err.strerror or err}"
            ) from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        """Serve in a thread of its own ("edge-asc-http"). It wakes every POLL_S to look for a
        stop, not more often: with no page open the dashboard should cost no CPU."""
        self._thread = threading.Thread(
            target=self.serve_forever, args=(POLL_S,), name="edge-asc-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, end the live feeds, close the socket. A connection to itself wakes
        the accept loop, so a stop does not wait for its next poll."""
        self.stopping.set()
        self.board.feed.wake()
        if self._thread is not None:
            stopper = threading.Thread(target=self.shutdown, daemon=True)
            stopper.start()
            while stopper.is_alive():
                with contextlib.suppress(OSError), socket.socket(self.address_family) as knock:
                    knock.settimeout(1.0)
                    knock.connect(self.server_address[:2])
                stopper.join(0.05)
            self._thread.join()
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        self._handlers.acquire()  # full: the accept loop waits, the kernel queues connections
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._handlers.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._handlers.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is no error; anything else is one line, never a traceback
        on the listener's stderr."""
        err = sys.exc_info()[1]
        if not isinstance(err, QUIET_ERRORS):
            warn(f"dashboard: {type(err).__name__}: {err} (request from {client_address[0]})")


class Handler(BaseHTTPRequestHandler):
    """One request: access first (401 on every route), then the route."""

    server: DashboardServer
    server_version = "edge-asc"
    sys_version = ""

    def setup(self) -> None:
        self.timeout = self.server.client_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: the journal is for the listener's own faults."""

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        self._refuse_method()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST  # noqa: N815

    def _refuse_method(self) -> None:
        if self._allowed():
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"GET only\n", "text/plain", {"Allow": "GET"})

    def _allowed(self) -> bool:
        if self.server.access.allows(self.headers):
            return True
        if self.server.access.token is None:
            self._send(HTTPStatus.FORBIDDEN, b"not a loopback host name\n", "text/plain")
        else:
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"the dashboard needs its token\n",
                "text/plain",
                {"WWW-Authenticate": 'Basic realm="edge-asc", charset="UTF-8"'},
            )
        return False

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        kind: str,
        extra: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        charset = "; charset=utf-8" if kind.startswith(("text/", "application/json")) else ""
        self.send_header("Content-Type", kind + charset)
        self.send_header("Content-Length", str(len(body)))
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        if not self._allowed():
            return
        parts = urlsplit(self.path)
        path, params = parts.path, parse_qs(parts.query)
        board = self.server.board
        if path in PAGES:
            body = page_html(PAGES[path], board.labels, board.feed.live, self.server.name)
            self._send(HTTPStatus.OK, body, "text/html", head=head)
        elif path.startswith("/static/") and (data := static_file(path[8:])) is not None:
            self._send(HTTPStatus.OK, data, STATIC[path[8:]], head=head)
        elif path == "/api/live":
            self._stream(head)
        elif path.startswith("/api/"):
            self._api(path[5:], params, head)
        elif path.startswith("/clips/") and board.clips is not None:
            clip = board.clips.read(path[7:])
            if clip is None:
                self._send(HTTPStatus.NOT_FOUND, b"no such clip\n", "text/plain", head=head)
            else:
                self._send(HTTPStatus.OK, clip, "audio/flac", head=head)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head=head)

    def _api(self, name: str, params: dict[str, list[str]], head: bool) -> None:
        board = self.server.board
        routes = {
            "now": lambda: api.now(board),
            "events": lambda: api.events(board, params),
            "today": lambda: api.today(board),
            "model": lambda: api.model(board),
        }
        try:
            if name == "today.svg":
                body, kind = api.today_svg(board).encode("utf-8"), "image/svg+xml"
            elif name in routes:
                body, kind = dumps(routes[name]()), "application/json"
            else:
                body = dumps({"error": f"no such API: /api/{name}"})
                self._send(HTTPStatus.NOT_FOUND, body, "application/json", head=head)
                return
        except ValueError as err:
            self._send(HTTPStatus.BAD_REQUEST, dumps({"error": str(err)}), "application/json")
            return
        except EdgeAscError as err:  # the history cannot be read right now
            body = dumps({"error": str(err)})
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, body, "application/json", head=head)
            return
        self._send(HTTPStatus.OK, body, kind, head=head)

    def _stream(self, head: bool) -> None:
        """Server-sent events: `window` for each new window, `detection` for each ended event."""
        server = self.server
        if not server._streams.acquire(blocking=False):
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many live pages open\n", "text/plain")
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            for key, value in SECURITY_HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            if head:
                return
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
            self._feed_loop()
        finally:
            server._streams.release()

    def _feed_loop(self) -> None:
        server, board = self.server, self.server.board
        feed = board.feed
        moment_seq, moment = feed.latest()
        event_seq = feed.event_seq()
        self.wfile.write(b"retry: 3000\n\n")
        self.wfile.write(self._message("window", api.moment_dict(board, moment)))
        self.wfile.flush()
        was_ended = feed.ended
        while not server.stopping.is_set():
            new_moment_seq, moment, event_seq, ended = feed.wait(moment_seq, event_seq, KEEPALIVE_S)
            if server.stopping.is_set():
                return
            out = [self._message("detection", self._with_clip(e)) for e in ended]
            if new_moment_seq != moment_seq or feed.ended != was_ended:
                out.append(self._message("window", api.moment_dict(board, moment)))
            moment_seq, was_ended = new_moment_seq, feed.ended
            if was_ended and not out:
                server.stopping.wait(KEEPALIVE_S)  # nothing more will come: no busy loop
            self.wfile.write(b"".join(out) or b": keepalive\n\n")
            self.wfile.flush()

    def _with_clip(self, event: Event) -> dict[str, Any]:
        """The event as the events page shows it; with --clips, once its clip is written (the
        recorder's thread saves it just after the event ends), waited for here, never in the
        listener's thread."""
        board = self.server.board
        if board.clips is not None:
            deadline = time.monotonic() + CLIP_WAIT_S
            while not board.clips.has(event.id) and time.monotonic() < deadline:
                if self.server.stopping.wait(0.05):
                    break
        return api.event_dict(board, event)

    @staticmethod
    def _message(kind: str, data: Any) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"
