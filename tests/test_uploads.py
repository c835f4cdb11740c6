"""Resumable uploads (tus 1.0) with tuspy, a real client nobody here wrote, against a real server."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
from conftest import PASSWORD, ROOT, Page, Web, activated_account, read
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from kb import tables, testing
from kb.testing import free_port

MIB = 1024 * 1024


@contextlib.contextmanager
def serving(web: Web) -> Iterator[str]:
    with testing.serving(web.app) as base:
        yield base


@contextlib.contextmanager
def session(base: str, login: str = "0750654D") -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=base, timeout=60) as http:
        http.get("/connexion")
        response = http.post(
            "/connexion",
            data={"csrf": http.cookies["kb_csrf"], "identifiant": login, "mot_de_passe": PASSWORD},
        )
        assert response.status_code == 303
        yield http


def tus_headers(http: httpx2.Client) -> dict[str, str]:
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    return {"Cookie": cookie, "X-CSRF-Token": http.cookies["kb_csrf"]}


def write_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = block[: min(left, MIB)]
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


@pytest.fixture
def served(make_web: Callable[..., Web], database_url: str) -> Iterator[tuple[Web, str]]:
    web = make_web({}, database_url=database_url, max_upload_bytes=64 * MIB)
    activated_account(web)
    activated_account(web, "0750655E", email="jean@example.fr")
    with serving(web) as base:
        yield web, base


def upload_rows(web: Web) -> list[sa.Row]:  # type: ignore[type-arg]
    with web.services.engine.connect() as connection:
        return list(connection.execute(sa.select(tables.uploads)))


def test_tuspy_uploads_in_several_sessions_and_the_sha256_is_right(
    served: tuple[Web, str], tmp_path: Path
) -> None:
    web, base = served
    path = tmp_path / "export.bin"
    expected = write_file(path, 5 * MIB + 123)
    with session(base) as http, contextlib.ExitStack() as stack:
        headers = tus_headers(http)
        stream = stack.enter_context(open(path, "rb"))  # tuspy leaves files it opens unclosed
        first = tus_client.TusClient(base + "/api/uploads", headers=headers)
        uploader = first.uploader(
            file_stream=stream, chunk_size=MIB, metadata={"filename": "export.bin"}
        )
        uploader.upload_chunk()
        uploader.upload_chunk()  # then the transfer stops: the laptop goes to sleep
        url = uploader.url
        # A connection dropped in the middle of a PATCH: what arrived is kept.
        offset = int(http.head(url, headers={"Tus-Resumable": "1.0.0"}).headers["upload-offset"])
        assert offset == 2 * MIB

        def half_chunk() -> Iterator[bytes]:
            with open(path, "rb") as handle:
                handle.seek(offset)
                yield handle.read(MIB // 2)
            raise OSError("connexion perdue")

        with pytest.raises(Exception):  # noqa: B017 - the client's own failure
            http.patch(
                url,
                content=half_chunk(),
                headers={
                    **headers,
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
        time.sleep(0.3)  # the server may not have started on the cut request yet
        kept = int(http.head(url, headers={"Tus-Resumable": "1.0.0"}).headers["upload-offset"])
        assert offset <= kept <= offset + MIB // 2
        # A later session resumes from the server's offset, with a new client.
        second = tus_client.TusClient(base + "/api/uploads", headers=headers)
        resumed = second.uploader(file_stream=stream, chunk_size=MIB, url=url)
        assert resumed.offset == kept
        resumed.upload()
    [row] = upload_rows(web)
    assert row.completed_at is not None
    assert (row.length, row.sha256, row.filename) == (5 * MIB + 123, expected, "export.bin")
    stored = web.services.uploads.path(row.id)
    assert stored.stat().st_size == 5 * MIB + 123


def test_a_completed_upload_is_attached_by_moving_it(
    served: tuple[Web, str], tmp_path: Path
) -> None:
    web, base = served
    path = tmp_path / "rapport.pdf"
    expected = write_file(path, 3 * MIB)
    with session(base) as http, open(path, "rb") as stream:
        uploader = tus_client.TusClient(base + "/api/uploads", headers=tus_headers(http)).uploader(
            file_stream=stream,
            chunk_size=MIB,
            metadata={"filename": "rapport.pdf", "filetype": "application/pdf"},
        )
        uploader.upload()
        upload_id = uploader.url.rsplit("/", 1)[1]
        source = web.services.uploads.path(upload_id)
        inode = source.stat().st_ino
        response = http.post(
            "/tickets",
            data={
                "csrf": http.cookies["kb_csrf"],
                "jeton": "t1",
                "categorie": "abonnement",
                "sujet": "Rapport",
                "message": "Ci-joint.",
                "televersement": upload_id,
            },
            files=[("fichiers", ("", b"", "application/octet-stream"))],
        )
        assert response.status_code == 303, response.text[:300]
        ticket = read(http, response.headers["location"])
        assert ticket.link("rapport.pdf") and "rapport.pdf (3 Mo)" in ticket.text
    assert upload_rows(web) == [] and not source.exists()
    with web.services.engine.connect() as connection:
        [attachment] = connection.execute(sa.select(tables.attachments)).all()
    moved = web.services.store.final_path(attachment.stored_as)
    assert (attachment.sha256, attachment.size) == (expected, 3 * MIB)
    assert moved.stat().st_ino == inode  # renamed, not copied


def test_an_unfinished_or_foreign_upload_cannot_be_attached(served: tuple[Web, str]) -> None:
    web, base = served
    with session(base) as http:
        created = http.post(
            "/api/uploads",
            headers={**tus_headers(http), "Tus-Resumable": "1.0.0", "Upload-Length": "10"},
        )
        upload_id = created.headers["location"].rsplit("/", 1)[1]
        data = {
            "csrf": http.cookies["kb_csrf"],
            "jeton": "t2",
            "categorie": "abonnement",
            "sujet": "S",
            "message": "M",
            "televersement": upload_id,
        }
        refused = http.post("/tickets", data=data, files=[("fichiers", ("", b"", "x"))])
        assert (
            refused.status_code == 400
            and "n'est pas encore entièrement envoyé" in Page(refused).text
        )
    with session(base, "0750655E") as other:
        data = {
            "csrf": other.cookies["kb_csrf"],
            "jeton": "t3",
            "categorie": "abonnement",
            "sujet": "S",
            "message": "M",
            "televersement": upload_id,
        }
        stolen = other.post("/tickets", data=data, files=[("fichiers", ("", b"", "x"))])
        assert stolen.status_code == 400 and "n'est plus disponible" in Page(stolen).text
        for method in ("HEAD", "PATCH", "DELETE"):
            response = other.request(
                method,
                f"/api/uploads/{upload_id}",
                headers={
                    **tus_headers(other),
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
                content=b"x" if method == "PATCH" else None,
            )
            assert response.status_code == 404, method
    assert len(upload_rows(web)) == 1


def test_protocol_answers(served: tuple[Web, str]) -> None:
    web, base = served
    with session(base) as http:
        tus = {**tus_headers(http), "Tus-Resumable": "1.0.0"}
        options = http.options("/api/uploads")
        assert options.status_code == 204
        assert options.headers["tus-version"] == "1.0.0"
        assert set(options.headers["tus-extension"].split(",")) == {
            "creation",
            "termination",
            "checksum",
            "expiration",
        }
        assert options.headers["tus-max-size"] == str(64 * MIB)
        too_big = http.post("/api/uploads", headers={**tus, "Upload-Length": str(65 * MIB)})
        assert too_big.status_code == 413
        assert "dépassent la taille autorisée (64 Mo en tout)" in too_big.json()["error"]["message"]
        assert (
            http.post(
                "/api/uploads", headers={**tus_headers(http), "Upload-Length": "5"}
            ).status_code
            == 412
        )
        assert (
            http.post(
                "/api/uploads",
                headers={"Tus-Resumable": "1.0.0", "Upload-Length": "5", "Cookie": tus["Cookie"]},
            ).status_code
            == 403
        )
        created = http.post(
            "/api/uploads",
            headers={
                **tus,
                "Upload-Length": "10",
                "Upload-Metadata": "filename " + base64.b64encode("été.txt".encode()).decode(),
            },
        )
        assert created.status_code == 201 and created.headers["tus-resumable"] == "1.0.0"
        url = created.headers["location"]
        assert "GMT" in created.headers["upload-expires"]
        patch = {**tus, "Content-Type": "application/offset+octet-stream"}
        assert (
            http.patch(url, content=b"abc", headers={**patch, "Upload-Offset": "5"}).status_code
            == 409
        )
        bad_sum = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
        mismatch = http.patch(
            url,
            content=b"abc",
            headers={**patch, "Upload-Offset": "0", "Upload-Checksum": f"sha1 {bad_sum}"},
        )
        assert mismatch.status_code == 460
        assert http.head(url, headers=tus).headers["upload-offset"] == "0"
        good_sum = base64.b64encode(hashlib.sha1(b"abc").digest()).decode()
        ok = http.patch(
            url,
            content=b"abc",
            headers={**patch, "Upload-Offset": "0", "Upload-Checksum": f"sha1 {good_sum}"},
        )
        assert ok.status_code == 204 and ok.headers["upload-offset"] == "3"
        assert (
            http.patch(url, content=b"x" * 20, headers={**patch, "Upload-Offset": "3"}).status_code
            == 400
        )
        assert http.delete(url, headers=tus).status_code == 204
        assert http.head(url, headers=tus).status_code == 404
        assert upload_rows(web) == []
    with httpx2.Client(base_url=base) as anonymous:
        response = anonymous.post(
            "/api/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "5"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "Connectez-vous pour envoyer des fichiers."


def test_each_account_has_bounded_unfinished_uploads(make_web: Callable[..., Web]) -> None:
    web = make_web({}, max_unfinished_uploads=2, max_unfinished_bytes=100)
    activated_account(web)
    with serving(web) as base, session(base) as http:
        tus = {**tus_headers(http), "Tus-Resumable": "1.0.0"}
        assert http.post("/api/uploads", headers={**tus, "Upload-Length": "60"}).status_code == 201
        over_bytes = http.post("/api/uploads", headers={**tus, "Upload-Length": "60"})
        assert (
            over_bytes.status_code == 403
            and "Trop de fichiers en attente d'un ticket" in over_bytes.json()["error"]["message"]
        )
        assert http.post("/api/uploads", headers={**tus, "Upload-Length": "10"}).status_code == 201
        over_count = http.post("/api/uploads", headers={**tus, "Upload-Length": "1"})
        assert (
            over_count.status_code == 403
            and "2 fichiers en attente au plus" in over_count.json()["error"]["message"]
        )


def test_finished_uploads_count_until_a_ticket_takes_them(make_web: Callable[..., Web]) -> None:
    web = make_web({}, max_unfinished_uploads=1, max_unfinished_bytes=100)
    activated_account(web)
    with serving(web) as base, session(base) as http:
        tus = {**tus_headers(http), "Tus-Resumable": "1.0.0"}
        url = http.post("/api/uploads", headers={**tus, "Upload-Length": "3"}).headers["location"]
        patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        assert http.patch(url, content=b"abc", headers=patch).status_code == 204
        # Finished, parked, not attached: it still holds its bytes, so it still counts.
        parked = http.post("/api/uploads", headers={**tus, "Upload-Length": "3"})
        assert parked.status_code == 403
        assert "1 fichier en attente au plus" in parked.json()["error"]["message"]
        ticket = http.post(
            "/tickets",
            data={"csrf": http.cookies["kb_csrf"], "jeton": "t", "categorie": "abonnement",
                  "sujet": "S", "message": "M", "televersement": url.rsplit("/", 1)[1]},
            files=[("fichiers", ("", b"", "application/octet-stream"))],
        )  # fmt: skip
        assert ticket.status_code == 303
        # Attached to the ticket: the quota is free again.
        assert http.post("/api/uploads", headers={**tus, "Upload-Length": "3"}).status_code == 201


def test_expired_uploads_are_swept_with_their_bytes(served: tuple[Web, str]) -> None:
    web, base = served
    with session(base) as http:
        tus = {**tus_headers(http), "Tus-Resumable": "1.0.0"}
        url = http.post("/api/uploads", headers={**tus, "Upload-Length": "10"}).headers["location"]
        http.patch(
            url,
            content=b"abc",
            headers={
                **tus,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        with web.services.engine.begin() as connection:
            connection.execute(
                sa.update(tables.uploads).values(
                    expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
                )
            )
        assert http.head(url, headers=tus).status_code == 404
        path = web.services.uploads.path(url.rsplit("/", 1)[1])
        assert path.exists()
        assert web.services.uploads.sweep() == 1
        assert not path.exists() and upload_rows(web) == []


def test_the_server_killed_mid_upload_and_restarted_the_client_resumes(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env["KB_DATA_DIR"] = str(tmp_path / "var")
    kb = [sys.executable, "-m", "kb.cli"]
    subprocess.run(
        [
            *kb,
            "accounts",
            "add",
            "0750654D",
            "--etablissement",
            "Lycée",
            "--prenom",
            "Marie",
            "--nom",
            "Curie",
            "--email",
            "m@example.fr",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [*kb, "serve", "--content", str(ROOT / "content"), "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return process
            time.sleep(0.2)
        raise AssertionError("kb serve did not start")

    server = start()
    base = f"http://127.0.0.1:{port}"
    try:
        from email import message_from_bytes, policy

        [mail] = (tmp_path / "var/outbox").glob("*.eml")
        body = (
            message_from_bytes(mail.read_bytes(), policy=policy.default)
            .get_body(("plain",))
            .get_content()
        )
        link = "/" + body.split("http://", 1)[1].split()[0].split("/", 1)[1]
        path = tmp_path / "video.mp4"
        expected = write_file(path, 6 * MIB)
        with httpx2.Client(base_url=base, timeout=60) as http, open(path, "rb") as stream:
            http.get(link)
            http.post(
                link,
                data={
                    "csrf": http.cookies["kb_csrf"],
                    "mot_de_passe": PASSWORD,
                    "confirmation": PASSWORD,
                },
            )
            uploader = tus_client.TusClient(
                base + "/api/uploads", headers=tus_headers(http)
            ).uploader(file_stream=stream, chunk_size=MIB, metadata={"filename": "video.mp4"})
            for _ in range(3):
                uploader.upload_chunk()
            os.killpg(server.pid, signal.SIGKILL)  # the server dies in the middle
            server.wait()
            with pytest.raises(TusCommunicationError):
                uploader.upload_chunk()
            server = start()
            resumed = tus_client.TusClient(
                base + "/api/uploads", headers=tus_headers(http)
            ).uploader(file_stream=stream, chunk_size=MIB, url=uploader.url)
            assert resumed.offset == 3 * MIB
            resumed.upload()
            response = http.post(
                "/tickets",
                data={
                    "csrf": http.cookies["kb_csrf"],
                    "jeton": "x",
                    "categorie": "abonnement",
                    "sujet": "Vidéo",
                    "message": "La voici.",
                    "televersement": uploader.url.rsplit("/", 1)[1],
                },
                files=[("fichiers", ("", b"", "x"))],
            )
            assert response.status_code == 303
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var/kb.sqlite3'}")
    with engine.connect() as connection:
        [attachment] = connection.execute(sa.select(tables.attachments)).all()
    engine.dispose()
    assert (attachment.size, attachment.sha256) == (6 * MIB, expected)


def new_upload(http: httpx2.Client, length: int) -> tuple[dict[str, str], str]:
    """A resumable upload of `length` bytes: the tus headers to go on with, and its address."""
    tus = {**tus_headers(http), "Tus-Resumable": "1.0.0"}
    url = http.post("/api/uploads", headers={**tus, "Upload-Length": str(length)})
    return tus, url.headers["location"]


def patch_headers(tus: dict[str, str], offset: int) -> dict[str, str]:
    return {**tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}


def test_a_body_that_stalls_frees_the_upload(served: tuple[Web, str]) -> None:
    web, base = served
    web.app.state.body_policy.idle_seconds = 0.5
    with session(base) as http:
        tus, url = new_upload(http, MIB)

        def stalls() -> Iterator[bytes]:
            yield b"x" * 1000
            time.sleep(3)  # the laptop sleeps with the connection open
            yield b"y"

        with contextlib.suppress(httpx2.TransportError):
            http.patch(
                url,
                content=stalls(),
                headers=patch_headers(tus, 0),
                timeout=10,
            )
        with httpx2.Client(base_url=base, cookies=http.cookies) as other:
            assert other.head(url, headers=tus).headers["upload-offset"] == "1000"


def test_a_slow_body_that_keeps_coming_is_never_cut(served: tuple[Web, str]) -> None:
    """The idle clock measures silence, not the whole body: a poor link that sends a little
    every tenth of a second for four times the idle time finishes its PATCH."""
    web, base = served
    web.app.state.body_policy.idle_seconds = 0.5
    with session(base) as http:
        tus, url = new_upload(http, 20000)

        def trickles() -> Iterator[bytes]:
            for _ in range(20):
                yield b"z" * 1000
                time.sleep(0.1)

        response = http.patch(
            url,
            content=trickles(),
            headers={**patch_headers(tus, 0), "Content-Length": "20000"},
            timeout=10,
        )
        assert response.status_code == 204, response.text
        assert response.headers["upload-offset"] == "20000"


def test_a_body_that_stalls_after_coming_for_a_while_is_ended(served: tuple[Web, str]) -> None:
    """Pieces for longer than the idle time, then silence: the PATCH is ended an idle time
    after the last piece, with what came kept, and the upload is free for the resumed one (not
    held until the piece after the silence comes)."""
    web, base = served
    web.app.state.body_policy.idle_seconds = 0.5
    with session(base) as http, httpx2.Client(base_url=base, cookies=http.cookies) as other:
        tus, url = new_upload(http, MIB)
        resumed: list[int] = []
        waited: list[float] = []

        def comes_then_stalls() -> Iterator[bytes]:
            for _ in range(8):
                yield b"x" * 1000
                time.sleep(0.1)
            time.sleep(1.5)  # the link goes dead; the page resumes from another connection
            started = time.monotonic()
            answer = other.patch(url, content=b"w" * 10, headers=patch_headers(tus, 8000))
            resumed.append(answer.status_code)
            waited.append(time.monotonic() - started)
            yield b"y"

        with contextlib.suppress(httpx2.TransportError):
            http.patch(
                url,
                content=comes_then_stalls(),
                headers=patch_headers(tus, 0),
                timeout=10,
            )
        # Not 423, nor after a wait: the stalled PATCH had let the upload go a second before.
        assert resumed == [204] and waited[0] < 2.5, (resumed, waited)
        assert other.head(url, headers=tus).headers["upload-offset"] == "8010"
