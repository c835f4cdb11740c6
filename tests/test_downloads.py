"""Attachments downloaded as a browser or a download manager expects: the whole length, never
compressed, resumable by ranges with validators, the real name; a file gone from the data dir
is a clear French answer, never a 500."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
import uvicorn
from conftest import Page, Web, activated_account, log_in
from test_uploads import free_port, session

from kb import tables

NAME = "Relevé d'été 2026 «final» 100%.zip"
CONTENT = bytes(range(256)) * 40  # 10,240 bytes, every byte value


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    activated_account(web, "0750655E", email="jean@example.fr")
    assert log_in(web).status_code == 303
    return web


def attach(web: Web, content: bytes = CONTENT, name: str = NAME) -> str:
    """A ticket with one attachment; the attachment's URL."""
    created = web.client.post(
        "/tickets",
        data={"csrf": web.client.cookies["kb_csrf"], "jeton": name, "categorie": "abonnement",
              "sujet": "Export", "message": "Ci-joint."},
        files=[("fichiers", (name, content, "application/zip"))],
    )  # fmt: skip
    assert created.status_code == 303, created.text
    reference = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    with web.services.engine.connect() as connection:
        attachment_id = connection.execute(sa.select(tables.attachments.c.id)).scalar_one()
    return f"/tickets/{reference}/pieces-jointes/{attachment_id}"


def test_the_whole_file_with_its_length_validators_and_real_name(web: Web) -> None:
    url = attach(web)
    response = web.client.get(url, headers={"accept-encoding": "gzip, deflate, br"})
    assert response.status_code == 200 and response.content == CONTENT
    headers = response.headers
    assert "content-encoding" not in headers  # a zip, and an attachment: never gzipped
    assert headers["content-length"] == str(len(CONTENT))
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
    written = parsedate_to_datetime(headers["last-modified"])
    assert abs(time.time() - written.timestamp()) < 120
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-content-type-options"] == "nosniff"
    disposition = headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and "%" not in fallback and fallback.startswith("Releve d'ete 2026")
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == NAME


def test_head_says_what_a_download_manager_needs_without_the_body(web: Web) -> None:
    url = attach(web)
    response = web.client.head(url)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["accept-ranges"] == "bytes"


def test_ranges_resume_a_cut_download(web: Web) -> None:
    url = attach(web)
    etag = web.client.get(url).headers["etag"]
    first = web.client.get(url, headers={"range": "bytes=0-999"})
    assert first.status_code == 206 and first.content == CONTENT[:1000]
    assert first.headers["content-range"] == f"bytes 0-999/{len(CONTENT)}"
    assert first.headers["content-length"] == "1000"
    rest = web.client.get(url, headers={"range": "bytes=1000-", "if-range": etag})
    assert rest.status_code == 206 and first.content + rest.content == CONTENT
    last = web.client.get(url, headers={"range": "bytes=-10"})
    assert last.status_code == 206 and last.content == CONTENT[-10:]
    # If-Range names another version (or a date that is not this file's): the whole file.
    changed = web.client.get(url, headers={"range": "bytes=1000-", "if-range": '"autre"'})
    assert changed.status_code == 200 and changed.content == CONTENT
    dated = rest.headers["last-modified"]
    same = web.client.get(url, headers={"range": "bytes=1000-", "if-range": dated})
    assert same.status_code == 206 and same.content == CONTENT[1000:]


def test_several_ranges_at_once(web: Web) -> None:
    url = attach(web)
    response = web.client.get(url, headers={"range": "bytes=0-9, 100-109"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(response.headers["content-length"]) == len(response.content)
    assert CONTENT[:10] in response.content and CONTENT[100:110] in response.content
    assert f"Content-Range: bytes 100-109/{len(CONTENT)}".encode() in response.content


def test_a_range_past_the_end_is_416_and_a_garbled_one_gives_the_whole_file(web: Web) -> None:
    url = attach(web)
    past = web.client.get(url, headers={"range": f"bytes={len(CONTENT)}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(CONTENT)}"
    for garbled in ("octets=0-10", "bytes=abc", "bytes=", "bytes=20-10"):
        whole = web.client.get(url, headers={"range": garbled})
        assert whole.status_code == 200 and whole.content == CONTENT, garbled


def test_ranges_do_not_open_the_file_to_anyone_else(web: Web) -> None:
    url = attach(web)
    web.client.cookies.clear()
    anonymous = web.client.get(url, headers={"range": "bytes=0-9"})
    assert anonymous.status_code in (302, 303) and anonymous.content != CONTENT[:10]
    assert log_in(web, "0750655E").status_code == 303
    other = web.client.get(url, headers={"range": "bytes=0-9", "accept": "application/json"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "introuvable"


def test_a_file_gone_from_the_data_dir_is_a_french_410(web: Web) -> None:
    url = attach(web)
    with web.services.engine.connect() as connection:
        stored_as = connection.execute(sa.select(tables.attachments.c.stored_as)).scalar_one()
    web.services.store.final_path(stored_as).unlink()  # a restore that missed the files
    page = web.client.get(url)
    assert page.status_code == 410
    text = Page(page).text
    assert "Fichier indisponible" in text and "n'est plus disponible sur le serveur" in text
    error = web.client.get(url, headers={"accept": "application/json"}).json()["error"]
    assert error["status"] == 410 and error["code"] == "piece_jointe_indisponible"
    assert "n'est plus disponible sur le serveur" in error["message"]
    # The ticket itself still opens, with the name of what it carried.
    ticket = web.client.get(url.split("/pieces-jointes/")[0])
    assert ticket.status_code == 200 and NAME in Page(ticket).text


def test_pages_and_answers_that_compress_well_are_still_gzipped(web: Web) -> None:
    page = web.client.get("/tickets", headers={"accept-encoding": "gzip"})
    assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"


# --------------------------------------------------------------------------- several GiB

GIB = 1024**3


@pytest.fixture
def served(make_web: Callable[..., Web]) -> Iterator[tuple[Web, str]]:
    web = make_web({})
    activated_account(web)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(web.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield web, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def sparse_file(path: os.PathLike[str], size: int) -> str:
    """A file of `size` bytes, mostly a hole, with marks around each GiB (the 4 GiB one
    included, where 32-bit offsets wrap); its SHA-256."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for at in range(0, size, GIB):
            handle.seek(max(0, at - 7))
            handle.write(f"<{at}>".encode() * 3)
        handle.seek(size - 5)
        handle.write(b"<fin>")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_a_cut_multi_gigabyte_download_resumes_to_the_right_sha256(
    served: tuple[Web, str],
) -> None:
    web, base = served
    size = 4 * GIB + 3 * 1024 * 1024 + 17
    with session(base) as http:
        created = http.post(
            "/tickets",
            data={"csrf": http.cookies["kb_csrf"], "jeton": "gros", "categorie": "abonnement",
                  "sujet": "Sauvegarde", "message": "Ci-joint."},
            files=[("fichiers", ("sauvegarde.tar.zst", b"x", "application/zstd"))],
        )  # fmt: skip
        assert created.status_code == 303
        url = attach_path(web, created.headers["location"])
        # The stored file becomes a sparse one of several GiB, its row made to match.
        with web.services.engine.begin() as connection:
            row = connection.execute(sa.select(tables.attachments)).one()
            stored = web.services.store.final_path(row.stored_as)
            expected = sparse_file(stored, size)
            connection.execute(sa.update(tables.attachments).values(size=size, sha256=expected))
        try:
            digest, received = hashlib.sha256(), 0
            cut_at = 3 * GIB + 12_345  # the connection drops here
            with http.stream("GET", url, headers={"accept-encoding": "gzip"}) as first:
                assert first.status_code == 200
                assert first.headers["content-length"] == str(size)
                assert "content-encoding" not in first.headers
                etag = first.headers["etag"]
                for chunk in first.iter_raw(1024 * 1024):
                    take = chunk[: cut_at - received]
                    digest.update(take)
                    received += len(take)
                    if received >= cut_at:
                        break
            resumed = {"range": f"bytes={received}-", "if-range": etag}
            with http.stream("GET", url, headers=resumed) as rest:
                assert rest.status_code == 206
                assert rest.headers["content-range"] == f"bytes {received}-{size - 1}/{size}"
                for chunk in rest.iter_raw(1024 * 1024):
                    digest.update(chunk)
                    received += len(chunk)
            assert received == size
            assert digest.hexdigest() == expected
        finally:
            stored.unlink()


def attach_path(web: Web, location: str) -> str:
    reference = location.split("?")[0].rsplit("/", 1)[1]
    with web.services.engine.connect() as connection:
        attachment_id = connection.execute(sa.select(tables.attachments.c.id)).scalar_one()
    return f"/tickets/{reference}/pieces-jointes/{attachment_id}"
