"""Every answer carries the security headers, a 500 included; an error costs no connection."""

from __future__ import annotations

import socket
from collections.abc import Callable

from conftest import Web
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from test_uploads import serving

from kb.web.security import HEADERS


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug nobody has found yet")


def with_a_bug(web: Web) -> Web:
    """A route that fails the way an unknown bug would, added to this test's app only."""
    web.app.router.routes.append(Route("/panne", broken))
    web.app.router.routes.append(Route("/api/panne", broken))
    return web


def read_answer(connection: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 answer (head and body, by its Content-Length) from a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head, body


def test_a_500_carries_the_security_headers_and_keeps_the_connection(
    make_web: Callable[..., Web],
) -> None:
    web = with_a_bug(make_web({}))
    with serving(web) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            for path in ("/panne", "/api/panne", "/"):
                connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head, body = read_answer(connection)
                lowered = head.lower()
                for name, value in HEADERS:
                    assert f"{name}: {value}".lower().encode() in lowered, (path, name)
                if path != "/":
                    assert head.startswith(b"HTTP/1.1 500"), head
                    assert b"connection: close" not in lowered
                    assert "Une erreur inattendue s'est produite" in body.decode().replace(
                        "&#39;", "'"
                    )
                    assert b"Traceback" not in body and b"RuntimeError" not in body
                else:  # the same connection serves the next request
                    assert head.startswith(b"HTTP/1.1 200"), head


def test_hsts_over_https_only(make_web: Callable[..., Web]) -> None:
    web = with_a_bug(make_web({}))
    https = TestClient(web.app, base_url="https://testserver", raise_server_exceptions=False)
    plain = TestClient(web.app, raise_server_exceptions=False)
    for path in ("/", "/api/search?q=x", "/introuvable", "/panne"):
        assert https.get(path).headers["strict-transport-security"].startswith("max-age=31536000")
        assert "strict-transport-security" not in plain.get(path).headers
