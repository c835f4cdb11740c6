"""Path traversal: no address and no file name reaches outside what kb serves."""

from __future__ import annotations

import base64
import http.client
import re
from collections.abc import Callable

import sqlalchemy as sa
from conftest import (
    Web,
    activated_account,
    article,
    client_for,
    new_ticket,
)
from test_uploads import serving

from kb import tables

# --- path traversal --------------------------------------------------------------------------


def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with the target exactly as written: no client normalises `..` away."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# Each would reach a real file (kb/config.py, pyproject.toml) if a path were joined naively.
TRAVERSALS = (
    "/static/../../config.py",
    "/static/..%2F..%2Fconfig.py",
    "/static/%2e%2e/%2e%2e/config.py",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static/..%5C..%5Cconfig.py",
    "/static/kb.css/../../../config.py",
    "/static/kb.0123456789.css/../../../config.py",
    "/static/....//....//config.py",
    "/static/..%252F..%252Fconfig.py",
    "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/config.py",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/static/config.py%00.css",
    "/articles/..%2F..%2F..%2Fpyproject.toml",
    "/articles/../../etc/passwd",
    "/articles/%2e%2e",
    "/api/articles/..%2F..%2Fetc%2Fpasswd",
    "/categories/..",
    "/categories/..%2F..%2F",
    "/categories/%2e%2e",
    "/api/uploads/..%2F..",
    "/api/uploads/..",
    "/tickets/..%2F..%2Fetc%2Fpasswd",
    "/tickets/T-2026-000001/pieces-jointes/..%2F..%2Fkb.sqlite3",
    "/tickets/T-2026-000001/pieces-jointes/-1",
    "/activation/..%2F..%2Fetc%2Fpasswd",
)
SECRETS = (b"root:", b"[project]", b"Settings", b"SQLite format", b"def ")


def test_traversal_in_urls_is_refused_and_nothing_outside_is_served(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({"abonnement/a.md": article("A")})
    activated_account(web)
    with serving(web) as base:
        for target in TRAVERSALS:
            status, body = raw_get(base, target)
            assert status in (303, 400, 401, 404, 405, 412), (target, status)
            assert not any(secret in body for secret in SECRETS), target


def test_attachment_and_upload_names_cannot_reach_outside(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    activated_account(web)
    client = client_for(web, "0750654D")
    reference = new_ticket(
        client,
        files=[
            ("fichiers", ("../../../../etc/passwd", b"a", "text/plain")),
            ("fichiers", ("..\\..\\kb.sqlite3", b"b", "text/plain")),
            ("fichiers", ("/etc/shadow", b"c", "text/plain")),
            ("fichiers", ("..", b"d", "text/plain")),
        ],
    )
    with web.services.engine.connect() as connection:
        rows = connection.execute(sa.select(tables.attachments)).all()
    root = (web.settings.data_dir / "attachments").resolve()
    assert sorted(r.filename for r in rows) == ["kb.sqlite3", "passwd", "piece-jointe", "shadow"]
    for row in rows:
        assert root in (root / row.stored_as).resolve().parents
        assert client.get(f"/tickets/{reference}/pieces-jointes/{row.id}").status_code == 200
    metadata = "filename " + base64.b64encode(b"../../../kb.sqlite3").decode()
    created = client.post(
        "/api/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": metadata,
                 "X-CSRF-Token": client.cookies["kb_csrf"]},
    )  # fmt: skip
    assert created.status_code == 201
    upload_id = created.headers["location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", upload_id)
    with web.services.engine.connect() as connection:
        [upload] = connection.execute(sa.select(tables.uploads)).all()
    assert upload.filename == "kb.sqlite3"
