"""The JSON API and the pages, on a real history of the events found in real replayed clips."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

from conftest import get

from edge_asc.history import read_events


def api(port: int, path: str) -> dict:
    status, headers, body = get(port, path)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(body)


def test_events_newest_first_with_filters(serve_board, history, labels):
    port = serve_board().port
    stored = read_events(history)
    assert [e.label for e in stored] == labels
    got = api(port, "/api/events")["events"]
    assert [e["id"] for e in got] == [e.id for e in reversed(stored)]
    assert got[0] == {**stored[-1].to_dict(), "clip": None}
    assert [e["label"] for e in api(port, "/api/events?label=siren")["events"]] == ["siren"]
    assert len(api(port, "/api/events?limit=2")["events"]) == 2
    assert api(port, "/api/events?since=2999-01-01")["events"] == []
    cut = stored[-1].start
    until = quote(cut.isoformat())  # +00:00: a + in a query is a space
    before = [e.id for e in reversed(stored) if e.start < cut]
    assert before  # the replay took some milliseconds: the events are apart in time
    assert [e["id"] for e in api(port, f"/api/events?until={until}")["events"]] == before
    assert len(api(port, "/api/events?since=1h")["events"]) == len(stored)


def test_bad_parameters_are_400_with_a_reason(serve_board):
    port = serve_board().port
    for query, reason in (
        ("label=cat", b"label must be one of the model's classes"),
        ("limit=0", b"limit must be 1 to 1000"),
        ("limit=many", b"limit must be 1 to 1000"),
        ("since=yesterday", b"since must be a span such as 30m"),
        ("until=soon", b"until must be a span"),
    ):
        status, _, body = get(port, f"/api/events?{query}")
        assert status == 400 and reason in body, (query, body)
    assert get(port, "/api/nothing")[0] == 404


def test_today_counts_per_hour_and_the_timeline(serve_board, history, labels):
    port = serve_board().port
    today = api(port, "/api/today")
    assert today["totals"] == dict.fromkeys(labels, 1)
    assert sum(sum(h["counts"].values()) for h in today["hours"]) == len(labels)
    assert [s["label"] for s in today["spans"]] == labels
    status, headers, body = get(port, "/api/today.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    svg = ET.fromstring(body)
    marks = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "event"]
    assert sorted(m.find("{http://www.w3.org/2000/svg}title").text.split()[0] for m in marks) == (
        sorted(labels)
    )


def test_now_and_the_model(serve_board, replayed, model):
    port = serve_board().port
    now = api(port, "/api/now")
    last = replayed[-1]
    assert now["live"] is True
    assert now["window"]["label"] == last.smoothed_label
    assert now["window"]["top_k"][0][0] == last.top_k(1, smoothed=True)[0][0]
    card = api(port, "/api/model")
    assert card["id"] == model.id and card["card"]["labels"] == model.labels


def test_pages_and_their_headers(serve_board, model):
    port = serve_board().port
    for path, title in (("/", "Now"), ("/today", "Today"), ("/events", "Events")):
        status, headers, body = get(port, path)
        assert status == 200 and f"<h1>{title}</h1>".encode() in body
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert headers["X-Content-Type-Options"] == "nosniff"
    events_page = get(port, "/events")[2].decode()
    assert all(f'<option value="{label}">' in events_page for label in model.labels)
    assert get(port, "/static/dashboard.js")[1]["Content-Type"].startswith("text/javascript")
    assert get(port, "/api/now", method="POST")[0] == 405
    status, headers, body = get(port, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_the_live_feed_and_the_events_without_a_history(model, replayed, history):
    """Without --db the listener's own events are the events page's; /api/live sends each new
    window and each ended event as it comes."""
    import http.client

    from edge_asc.dashboard.access import Access
    from edge_asc.dashboard.api import Dashboard
    from edge_asc.dashboard.feed import FeedWatcher, LiveFeed
    from edge_asc.dashboard.server import DashboardServer
    from edge_asc.dashboard.store import MemoryStore

    feed = LiveFeed(2)
    board = Dashboard(feed, MemoryStore(feed), model.labels, model.card.to_json(), model.id)
    server = DashboardServer(("127.0.0.1", 0), board, Access(None))
    server.start()
    watcher = FeedWatcher(feed, server.stop)
    try:
        port = server.server_address[1]
        assert api(port, "/api/now")["window"] is None  # before the first window
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/live")
        stream = conn.getresponse()
        assert stream.headers["Content-Type"] == "text/event-stream"

        def message() -> tuple[str, dict]:
            kind = data = ""
            while (line := stream.fp.readline().decode()) != "\n" or not kind:
                if line.startswith("event: "):
                    kind = line[7:].strip()
                elif line.startswith("data: "):
                    data = line[6:]
            return kind, json.loads(data)

        assert message() == ("window", {"live": True, "ended": False, "window": None})
        events = read_events(history)
        watcher.window(replayed[10], events[:1], None)
        got = dict([message(), message()])
        assert got["detection"] == {**events[0].to_dict(), "clip": None}
        assert got["window"]["window"]["offset_s"] == round(replayed[10].offset, 3)
        assert len(got["window"]["window"]["top_k"]) == 2
        watcher.window(replayed[11], events[1:], None)
        listed = api(port, "/api/events")["events"]
        assert [e["id"] for e in listed] == [e.id for e in reversed(events[1:])] + [events[0].id]
        assert [e["label"] for e in api(port, "/api/events?label=siren")["events"]] == ["siren"]
        conn.close()
    finally:
        watcher.close()  # the end of the stream stops the server
    assert server.stopping.is_set()
