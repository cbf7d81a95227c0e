"""The four pages: HTML shells the script in static/ fills from the JSON API, so the pages and
a script of the user's see the same data. No inline script or style: the server's
Content-Security-Policy allows only its own files."""

from __future__ import annotations

from html import escape
from importlib import resources

PAGES = {"/": "now", "/today": "today", "/events": "events", "/model": "model"}
TITLES = {"now": "Now", "today": "Today", "events": "Events", "model": "Model card"}
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
SINCE_CHOICES = (("1h", "last hour"), ("24h", "last 24 h"), ("7d", "last 7 days"), ("", "all"))


def static_file(name: str) -> bytes | None:
    """One of the package's own static files by name (nothing else can be named)."""
    if name not in STATIC:
        return None
    return resources.files("edge_asc.dashboard").joinpath("static", name).read_bytes()


def _body(page: str, labels: list[str], live: bool) -> str:
    if page == "now":
        if not live:
            return (
                '<p id="status">no live audio: this is <code>edge-asc serve</code>, the history '
                "alone (see Today and Events)</p>"
            )
        return (
            '<p id="status">connecting…</p>'
            '<div class="now"><div id="label">–</div><div id="confidence"></div></div>'
            '<div id="bars"></div>'
            '<p>input level <meter id="level" min="-120" max="0" value="-120"></meter> '
            '<span id="dbfs"></span></p>'
            '<p id="event"></p><ul id="warnings"></ul>'
            '<p class="small">window <span id="time"></span> · <span id="model"></span></p>'
        )
    if page == "today":
        return (
            "<p>Events of the last 24 hours, one row per class (times UTC); the bars count "
            "them per hour.</p>"
            '<p><img id="timeline" src="/api/today.svg" alt="timeline of the last 24 hours"></p>'
            '<table id="hours"><thead></thead><tbody></tbody></table>'
        )
    if page == "events":
        options = '<option value="">every class</option>' + "".join(
            f'<option value="{escape(label)}">{escape(label)}</option>' for label in labels
        )
        since = "".join(
            f'<option value="{value}"{" selected" if value == "24h" else ""}>{text}</option>'
            for value, text in SINCE_CHOICES
        )
        return (
            '<form id="filters">class <select name="label">' + options + "</select> since "
            '<select name="since">' + since + "</select></form>"
            '<table id="events"><thead><tr><th>start (UTC)</th><th>class</th><th>duration</th>'
            "<th>peak</th><th>level</th><th>clip</th></tr></thead><tbody></tbody></table>"
            '<p id="count" class="small"></p>'
        )
    return (
        '<dl id="card"></dl><details><summary>the whole card</summary><pre id="raw"></pre>'
        "</details>"
    )


def page_html(page: str, labels: list[str], live: bool, name: str) -> bytes:
    """The page `page` (a value of PAGES)."""
    nav = " ".join(
        f'<a href="{path}"{" class=here" if key == page else ""}>{TITLES[key]}</a>'
        for path, key in PAGES.items()
    )
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>edge-asc · {TITLES[page]}</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"></head>'
        f'<body data-page="{page}" data-live="{"1" if live else "0"}">'
        f"<header><b>edge-asc</b> <span class=small>{escape(name)}</span> <nav>{nav}</nav>"
        f"</header><main><h1>{TITLES[page]}</h1>{_body(page, labels, live)}</main>"
        '<script src="/static/dashboard.js"></script></body></html>'
    )
    return html.encode("utf-8")
