"""Who may see the dashboard: loopback alone without a token, anyone with it beyond.

A listener's dashboard shows what a microphone in someone's home hears, so an address other than
loopback is refused unless a token is set, and once a token is set every request must carry it:
HTTP Basic (any user name, the token as password: the browser asks for it and keeps it for the
page's live feed) or `Authorization: Bearer TOKEN` for scripts. Without a token the Host header
must name loopback too, so a web page cannot reach the dashboard through DNS rebinding.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from edge_asc.errors import EdgeAscError

MIN_TOKEN_CHARS = 8
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def parse_address(text: str, option: str = "--http") -> tuple[str, int]:
    """HOST:PORT ([::1]:8080 for IPv6; port 0: any free one); EdgeAscError in one line."""
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise EdgeAscError(
            f"{option} takes HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080 (got {text!r})"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) can only be reached from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(f[4][0]).is_loopback for f in found)


def check_token(host: str, token: str | None, option: str = "--http") -> None:
    """Refuse, in one line, an address beyond loopback without a token, and a weak token."""
    if token is not None and (len(token) < MIN_TOKEN_CHARS or token != token.strip()):
        raise EdgeAscError(
            f"--http-token must be at least {MIN_TOKEN_CHARS} characters, without spaces around "
            "it (e.g. from `openssl rand -hex 16`)"
        )
    if token is None and not is_loopback(host):
        raise EdgeAscError(
            f"{option} {host} can be reached from other machines: set a token with --http-token "
            "(or http-token in the config file), or listen on 127.0.0.1"
        )


@dataclass(frozen=True)
class Access:
    """Checks one request's headers. `token` None: loopback only, by address and Host."""

    token: str | None

    def allows(self, headers: Mapping[str, str]) -> bool:
        if self.token is None:
            return _host_is_loopback(headers.get("Host", ""))
        return self._has_token(headers.get("Authorization", ""))

    def _has_token(self, value: str) -> bool:
        scheme, _, given = value.partition(" ")
        given = given.strip()
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())


def _host_is_loopback(host_header: str) -> bool:
    """The Host header names loopback (a name or address, with or without a port)."""
    host = host_header.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
