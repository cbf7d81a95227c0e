"""Who may see the dashboard: the address and token checks, and each request's headers."""

from __future__ import annotations

import base64

import pytest

from edge_asc.dashboard.access import Access, is_loopback, parse_address
from edge_asc.dashboard.command import http_options
from edge_asc.errors import EdgeAscError


def test_addresses():
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address(" localhost:80 ") == ("localhost", 80)
    for bad in ("8080", ":8080", "host:", "host:http", "host:-1", "host:70000", "[::1]"):
        with pytest.raises(EdgeAscError, match="--http takes HOST:PORT"):
            parse_address(bad)
    assert all(map(is_loopback, ("127.0.0.1", "127.8.9.10", "::1", "localhost")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.2", "10.0.0.1")))


def test_a_token_is_needed_beyond_loopback_and_applies_to_http_only():
    assert http_options("127.0.0.1:8080", None) is not None
    for host in ("0.0.0.0:8080", "[::]:8080", "192.168.1.2:80"):
        with pytest.raises(EdgeAscError, match="can be reached from other machines"):
            http_options(host, None)
        assert http_options(host, "a-long-token").token == "a-long-token"
    for weak in ("short", " padded-token ", ""):
        with pytest.raises(EdgeAscError, match="at least 8 characters"):
            http_options("0.0.0.0:8080", weak)
    with pytest.raises(EdgeAscError, match="--http-token applies to --http only"):
        http_options(None, "a-long-token")
    assert http_options(None, None) is None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_each_request_must_carry_the_token():
    access = Access("a-long:token")  # a colon in a password is part of it
    assert access.allows({"Authorization": basic("anyone", "a-long:token")})
    assert access.allows({"Authorization": "Bearer a-long:token"})
    assert access.allows({"Authorization": "bearer  a-long:token "})
    for header in (
        basic("a-long", "token"), basic("anyone", "a-long:toke"), "Bearer a-long:tokenX",
        "Basic !!!", "Basic " + base64.b64encode(b"\xff:\xfe").decode(), "Digest x", "",
    ):  # fmt: skip
        assert not access.allows({"Authorization": header, "Host": "127.0.0.1"}), header
    assert not access.allows({"Host": "127.0.0.1"})


def test_without_a_token_the_host_header_must_be_loopback():
    access = Access(None)
    for host in ("127.0.0.1", "127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST"):
        assert access.allows({"Host": host}), host
    for host in ("", "evil.example", "192.168.1.2:8080", "[fe80::1]:80", "localhost.evil.example"):
        assert not access.allows({"Host": host}), host
