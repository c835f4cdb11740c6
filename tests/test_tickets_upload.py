"""A multi-gigabyte attachment streamed by the test through a real server, never whole in memory."""

from __future__ import annotations

import contextlib
import hashlib
import resource
from collections.abc import Callable, Iterator

import httpx2
import pytest
import sqlalchemy as sa
from conftest import PASSWORD, Web, activated_account

from kb import tables
from kb.testing import serving

GIB = 1024**3
CHUNK = b"\x00\x01kb-piece-jointe\xff" * (1024 * 1024 // 20)


@pytest.fixture
def served(make_web: Callable[..., Web]) -> Iterator[tuple[Web, str]]:
    web = make_web({})
    activated_account(web)
    with serving(web.app) as base:
        yield web, base


@contextlib.contextmanager
def logged_in(base: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=base, timeout=120) as client:
        client.get("/connexion")
        client.post("/connexion", data={"csrf": client.cookies["kb_csrf"], "identifiant": "0750654D",
                                        "mot_de_passe": PASSWORD})  # fmt: skip
        yield client


def multipart(csrf: str, size: int, digest: hashlib._Hash) -> tuple[Iterator[bytes], int]:
    boundary = "kb-limite-0123456789"
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in {"csrf": csrf, "jeton": "gros", "categorie": "abonnement",
                            "sujet": "Export complet", "message": "Voici l'export."}.items()
    )  # fmt: skip
    head = (
        fields + f'--{boundary}\r\nContent-Disposition: form-data; name="fichiers"; '
        'filename="export.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        left = size
        while left:
            chunk = CHUNK[: min(left, len(CHUNK))]
            digest.update(chunk)
            left -= len(chunk)
            yield chunk
        yield tail

    return body(), len(head) + size + len(tail)


def test_a_multi_gigabyte_upload_is_streamed_hashed_and_kept(served: tuple[Web, str]) -> None:
    web, base = served
    with logged_in(base) as client:
        _upload_two_gigabytes(web, client)


def _upload_two_gigabytes(web: Web, client: httpx2.Client) -> None:
    size = 2 * GIB + 12_345
    digest = hashlib.sha256()
    body, length = multipart(client.cookies["kb_csrf"], size, digest)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, server included
    response = client.post(
        "/tickets",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=kb-limite-0123456789",
                 "content-length": str(length)},
    )  # fmt: skip
    assert response.status_code == 303, response.text[:500]
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert peak_growth_mib < 150, f"memory grew by {peak_growth_mib:.0f} MiB"
    with web.services.engine.connect() as connection:
        [attachment] = connection.execute(sa.select(tables.attachments)).all()
    assert (attachment.size, attachment.sha256) == (size, digest.hexdigest())
    stored = web.services.store.final_path(attachment.stored_as)
    assert stored.stat().st_size == size
    stored.unlink()  # 2 GiB: don't keep it around


def test_over_the_limit_the_server_stops_reading_and_keeps_nothing(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({}, max_upload_bytes=5 * 1024 * 1024)
    activated_account(web)
    with serving(web.app) as base, logged_in(base) as client:
        body, _ = multipart(client.cookies["kb_csrf"], 50 * 1024 * 1024, hashlib.sha256())
        try:
            response = client.post(
                "/tickets", content=body,
                headers={"content-type": "multipart/form-data; boundary=kb-limite-0123456789",
                         "accept": "application/json"},
            )  # fmt: skip
            assert response.status_code == 413
            message = response.json()["error"]["message"]
            assert "dépassent la taille autorisée (5 Mo en tout)" in message
        except httpx2.TransportError:
            pass  # the server may close the connection before the client has sent all
    with web.services.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(tables.tickets)).scalar() == 0
        )
    files = [p for p in (web.settings.data_dir / "attachments").rglob("*") if p.is_file()]
    assert files == []
