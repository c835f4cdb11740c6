"""Oversized, endless and stalled requests: refused before they cost memory, disk or a socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx2
import pytest
import sqlalchemy as sa
from conftest import (
    PASSWORD,
    Web,
    activated_account,
    article,
    client_for,
    log_in,
    new_ticket,
)
from test_uploads import serving

from kb import tables
from kb.web.limits import FORM_BYTES

# --- oversized forms, fields and headers -----------------------------------------------------

MIB = 1024 * 1024


def audit_rows(web: Web) -> int:
    with web.services.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(tables.audit)).scalar()
        )


def ticket_rows(web: Web) -> int:
    with web.services.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(tables.tickets)).scalar()
        )


@pytest.fixture
def logged_web(make_web: Callable[..., Web]) -> Web:
    web = make_web({})
    activated_account(web)
    log_in(web)
    return web


def assert_refused_clearly(response: httpx2.Response) -> None:
    assert response.status_code in (400, 413, 431), (response.status_code, response.text[:300])
    assert "Traceback" not in response.text


def test_a_10_mb_login_form_is_refused(logged_web: Web) -> None:
    web = logged_web
    client = client_for(web)
    before = audit_rows(web)
    body = f"csrf={client.cookies['kb_csrf']}&identifiant=0750654D&mot_de_passe=" + "a" * 10 * MIB
    response = client.post(
        "/connexion", content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert_refused_clearly(response)
    assert "kb_session" not in client.cookies and audit_rows(web) == before


def test_thousands_of_form_fields_are_refused(logged_web: Web) -> None:
    web = logged_web
    client = client_for(web)
    fields = "&".join(f"f{i}=x" for i in range(5000))
    body = f"csrf={client.cookies['kb_csrf']}&identifiant=0750654D&mot_de_passe={PASSWORD}&{fields}"
    response = client.post(
        "/connexion", content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert_refused_clearly(response)
    assert "kb_session" not in client.cookies


def test_huge_ticket_fields_are_refused_and_nothing_is_stored(logged_web: Web) -> None:
    web = logged_web
    token = web.client.cookies["kb_csrf"]
    for field_name, size in (("sujet", 300 * 1024), ("message", 300 * 1024), ("jeton", MIB)):
        data = {
            "csrf": token,
            "jeton": "j",
            "categorie": "abonnement",
            "sujet": "S",
            "message": "M",
        }
        data[field_name] = "x" * size
        response = web.client.post(
            "/tickets", data=data, files=[("fichiers", ("", b"", "application/octet-stream"))]
        )
        assert_refused_clearly(response)
    assert ticket_rows(web) == 0
    assert not [p for p in (web.settings.data_dir / "attachments").rglob("*") if p.is_file()]


def multipart(parts: list[tuple[str, str | bytes]], boundary: str = "kbhostile") -> bytes:
    chunks = []
    for name, value in parts:
        data = value.encode() if isinstance(value, str) else value
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def test_a_ticket_form_with_hundreds_of_parts_is_refused(logged_web: Web) -> None:
    web = logged_web
    token = web.client.cookies["kb_csrf"]
    fields = [("csrf", token), ("jeton", "j"), ("categorie", "abonnement"), ("sujet", "S"),
              ("message", "M")]  # fmt: skip
    # 2,000 parts of 200 KB each would hold 400 MB in memory: a few hundred small ones show it.
    padding = [(f"champ{i}", "x" * 1024) for i in range(500)]
    response = web.client.post(
        "/tickets",
        content=multipart(fields + padding),
        headers={"content-type": "multipart/form-data; boundary=kbhostile"},
    )
    assert_refused_clearly(response)
    assert ticket_rows(web) == 0


def test_a_status_form_with_thousands_of_parts_is_refused(logged_web: Web) -> None:
    web = logged_web
    reference = new_ticket(web.client)
    padding = [(f"champ{i}", "x") for i in range(1500)]
    response = web.client.post(
        f"/tickets/{reference}/statut",
        content=multipart(
            [("csrf", web.client.cookies["kb_csrf"]), ("statut", "resolu"), *padding]
        ),
        headers={"content-type": "multipart/form-data; boundary=kbhostile"},
    )
    assert_refused_clearly(response)


def raw_request(base: str, head: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_100_kb_header_line_is_refused(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    with serving(web) as base:
        for name in (b"X-Padding", b"Cookie", b"Upload-Metadata"):
            head = (
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + name + b": " + b"a" * 100_000
                + b"\r\nConnection: close\r\n\r\n"
            )  # fmt: skip
            answer = raw_request(base, head)
            status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
            assert status in (400, 413, 431), (name, answer[:200])


# --- one body limit in front of every route, and a clock on every body ----------------------


def head_of(answer: bytes) -> tuple[int, dict[str, str]]:
    """The status and the headers (lower-cased names) of a raw HTTP/1.1 answer."""
    lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines[0].startswith("HTTP/1.1 ") else 0
    return status, {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
    }


def exchange(base: str, head: bytes, then: bytes = b"", wait: float = 10.0) -> tuple[bytes, float]:
    """Send `head` (and `then`), never the rest of the body; the answer until the server closes,
    and how long it took."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(head + then)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except TimeoutError:
            pass  # the server kept the connection open: the caller's assertion says so
    return answer, time.monotonic() - started


def test_a_declared_body_over_the_routes_limit_is_refused_before_a_byte_is_read(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({"abonnement/a.md": article("A")})
    with serving(web) as base:
        for path, declared in (
            ("/articles/a/vote", 10 * MIB),  # anonymous, no CSRF token: still never read
            ("/connexion", FORM_BYTES + 1),
            ("/mot-de-passe-oublie", 2**40),
            ("/recherche", 1),  # a page that takes no body takes none
            ("/tickets", 7 * 1024**3),  # over the 6 GB of attachments of one message
            ("/api/uploads/abc", 7 * 1024**3),
        ):
            method = "PATCH" if path.startswith("/api/uploads/") else "POST"
            if path == "/recherche":
                method = "GET"
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            answer, _ = exchange(base, head, b"x" * min(declared, 100))
            status, headers = head_of(answer)
            assert status == 413, (path, answer[:300])
            assert headers["connection"] == "close" and "content-security-policy" in headers
            body = answer.split(b"\r\n\r\n", 1)[1].decode()
            assert "trop volumineu" in body or "n'accepte pas de contenu" in body, body


def test_a_chunked_body_is_cut_when_it_passes_the_limit(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    with serving(web) as base:
        chunk = b"a" * 16384
        piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        head = (
            b"POST /connexion HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        # Five chunks pass the 64 KiB of a form; the body never ends on its own.
        answer, _ = exchange(base, head, piece * 5)
        status, headers = head_of(answer)
        assert status == 413 and headers["connection"] == "close", answer[:300]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/connexion", "application/x-www-form-urlencoded"),
        ("/tickets", "multipart/form-data; boundary=kbhostile"),
    ],
)
def test_a_body_that_stalls_is_ended_and_its_socket_freed(
    make_web: Callable[..., Web], path: str, content_type: str
) -> None:
    web = make_web({})
    activated_account(web)
    web.app.state.body_policy.form_seconds = 0.5
    web.app.state.body_policy.idle_seconds = 0.5
    with serving(web) as base, httpx2.Client(base_url=base) as http:
        http.get("/connexion")
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        if path == "/tickets":
            http.post("/connexion", data={"csrf": http.cookies["kb_csrf"],
                                         "identifiant": "0750654D", "mot_de_passe": PASSWORD})  # fmt: skip
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: 5000\r\n\r\n"
        ).encode()
        answer, took = exchange(base, head, b"--kbhostile\r\n", wait=15)
        status, headers = head_of(answer)
        assert status == 408 and headers["connection"] == "close", answer[:300]
        assert "content-security-policy" in headers and took < 10
        assert "pas arrivée à temps" in answer.decode("utf-8", "replace")
    assert ticket_rows(web) == 0


def test_a_form_that_drips_a_byte_at_a_time_is_ended_at_its_deadline(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({})
    web.app.state.body_policy.form_seconds = 1.0  # each byte comes well within the idle time
    with serving(web) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(
                b"POST /connexion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            )
            started, answer = time.monotonic(), b""
            while time.monotonic() - started < 8:
                try:
                    connection.sendall(b"a")
                except OSError:
                    break
                connection.settimeout(0.2)
                try:
                    if chunk := connection.recv(65536):
                        answer += chunk
                        break
                except TimeoutError:
                    continue
        assert head_of(answer)[0] == 408, answer[:200]
        assert time.monotonic() - started < 5
