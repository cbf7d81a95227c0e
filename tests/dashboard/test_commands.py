"""`listen --http`, `serve` and the config file's http keys, as real subprocesses."""

from __future__ import annotations

import signal
import socket

from conftest import TOKEN, dashboard_port, get
from listener import Listener, edge_asc


def test_listen_http_token_from_the_config_file(sequence, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[listen]\nhttp = "127.0.0.1:0"\nhttp-token = "{TOKEN}"\ndisplay = "none"\n'
        f'db = "{tmp_path / "history.db"}"\n'
    )
    listener = Listener(tmp_path, "listen", "--from-file", str(sequence), "--config", str(config))
    try:
        port = dashboard_port(listener)
        assert get(port, "/api/now")[0] == 401
        listener.wait_for(
            lambda: get(port, "/api/now", TOKEN)[2].count(b'"label"') > 0, 30, "a window"
        )
        assert listener.stop(signal.SIGTERM) == 0
    finally:
        listener.kill()
    assert "Traceback" not in listener.stderr


def test_a_bad_http_key_in_the_config_file_is_one_line(sequence, tmp_path):
    config = tmp_path / "config.toml"
    for text, expected in (
        ("http = 8080", "[listen] http must be a string"),
        ('http = "0.0.0.0:8080"', "can be reached from other machines"),
        ("clips = 1", "[listen] clips must be true or false"),
    ):
        config.write_text(f"[listen]\n{text}\n")
        run = edge_asc("listen", "--from-file", str(sequence), "--config", str(config))
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr


def test_the_token_from_the_environment(sequence, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ASC_HTTP_TOKEN", "short")
    run = edge_asc("listen", "--from-file", str(sequence), "--http", "0.0.0.0:8080")
    assert run.returncode == 2 and "at least 8 characters" in run.stderr


def test_a_port_in_use_is_one_line_before_any_audio(sequence, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = edge_asc(
            "listen", "--from-file", str(sequence), "--fast", "--display", "none",
            "--http", f"127.0.0.1:{port}", "--log", str(tmp_path / "p.jsonl"),
        )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr == (
        f"edge-asc: cannot serve the dashboard on 127.0.0.1:{port}: Address already in use\n"
    )
    assert not (tmp_path / "p.jsonl").exists()


def test_serve_a_history_until_sigterm(history, tmp_path):
    server = Listener(
        tmp_path, "serve", "--db", str(history), "--http", "127.0.0.1:0", "--http-token", TOKEN
    )
    try:
        port = dashboard_port(server)
        assert get(port, "/api/events")[0] == 401
        status, _, body = get(port, "/api/events", TOKEN, "Bearer")
        assert status == 200 and body.count(b'"id"') == 4
        assert b'"live":false' in get(port, "/api/now", TOKEN)[2]
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.kill()
    assert server.stderr.endswith("edge-asc: stopped\n")


def test_serve_without_a_history_is_one_line(tmp_path):
    run = edge_asc("serve", "--db", str(tmp_path / "none.db"), "--http", "127.0.0.1:0")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "no history at" in run.stderr
    (tmp_path / "other.db").write_text("not a database")
    run = edge_asc("serve", "--db", str(tmp_path / "other.db"))
    assert run.returncode == 2 and "not an SQLite database" in run.stderr, run.stderr
