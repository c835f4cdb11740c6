"""A replica stopped in the middle of a resumable upload stops within KB_SHUTDOWN_SECONDS, and
the upload resumes on another replica, which makes the ticket."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
from conftest import write_tree
from test_faults import MIB, PASSWORD, SMALL_CONTENT, UAI, free_port, kb_env, logged_in

from kb import db, tables
from kb.config import Settings
from kb.helpdesk import accounts
from kb.knowledge.build import build


def start(root: Path, port: int) -> subprocess.Popen[bytes]:
    """`kb serve` on this port; its log lines (JSON on stdout) in kb-PORT.log."""
    log = open(root / f"kb-{port}.log", "wb")  # noqa: SIM115 - the process keeps writing it
    process = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--content", "content", "--index", "index",
         "--port", str(port)],
        cwd=root, env=kb_env(KB_DATA_DIR=root / "var", KB_SHUTDOWN_SECONDS=2),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()  # the child has its own copy
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "kb serve exited at start"
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        time.sleep(0.1)
    raise AssertionError("kb serve did not answer in time")


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    write_tree(tmp_path / "content", SMALL_CONTENT)
    build(tmp_path / "content", tmp_path / "index")
    engine = db.make_engine(Settings.from_env({}, data_dir=tmp_path / "var"))
    db.upgrade(engine)
    account, _ = accounts.save(engine, role="etablissement", login=UAI, establishment="Lycée",
                               first_name="Marie", last_name="Curie", email="m@example.fr")  # fmt: skip
    accounts.set_password(engine, account, PASSWORD)
    engine.dispose()
    ports = free_port(), free_port()
    processes = [start(tmp_path, port) for port in ports]
    yield processes[0], *ports
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def test_a_stop_cuts_an_upload_after_the_delay_and_it_resumes_on_the_other_replica(
    two_replicas: tuple[subprocess.Popen[bytes], int, int], tmp_path: Path
) -> None:
    a, port_a, port_b = two_replicas
    data = os.urandom(6 * MIB)
    with logged_in(f"http://127.0.0.1:{port_a}") as http:
        tus = {"Cookie": "; ".join(f"{k}={v}" for k, v in http.cookies.items()),
               "X-CSRF-Token": http.cookies["kb_csrf"], "Tus-Resumable": "1.0.0"}  # fmt: skip
        created = http.post("/api/uploads", headers={**tus, "Upload-Length": str(len(data)),
                            "Upload-Metadata": "filename ZXhwb3J0LmJpbg=="})  # fmt: skip
        assert created.status_code == 201, created.text
        path = "/api/uploads/" + created.headers["location"].rsplit("/", 1)[1]
        # A PATCH of the whole file to A, of which the client sends 3 MiB and then nothing:
        # a slow line, a laptop asleep. A request like that kept a stopping kb up for ever.
        patch = socket.create_connection(("127.0.0.1", port_a))
        head = "".join(f"{k}: {v}\r\n" for k, v in tus.items())
        patch.sendall(
            (f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Upload-Offset: 0\r\n"
             "Content-Type: application/offset+octet-stream\r\n"
             f"Content-Length: {len(data)}\r\n\r\n").encode() + data[: 3 * MIB]
        )  # fmt: skip
        upload_file = tmp_path / "var" / "uploads" / path.rsplit("/", 1)[1]
        deadline = time.monotonic() + 30
        while not upload_file.exists() or upload_file.stat().st_size < 2 * MIB:
            assert time.monotonic() < deadline, "the first bytes never reached the disk"
            time.sleep(0.05)

        os.killpg(a.pid, signal.SIGTERM)  # a rolling restart: A is asked to stop
        a.wait(timeout=25)  # KB_SHUTDOWN_SECONDS=2: it stops although the upload never ends
        assert a.returncode in (0, -signal.SIGTERM)  # uvicorn ends by the signal it caught
        assert b"timeout graceful shutdown exceeded" in (tmp_path / f"kb-{port_a}.log").read_bytes()
        patch.close()

        # The same browser goes on with B (the load balancer's choice), where A stopped.
        http.base_url = httpx2.URL(f"http://127.0.0.1:{port_b}")
        offset = int(http.head(path, headers=tus).headers["upload-offset"])
        # What A wrote is kept (the bytes still in its last, unwritten batch are sent again).
        assert 2 * MIB <= offset <= 3 * MIB
        rest = http.patch(path, content=data[offset:], headers={
            **tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
        })  # fmt: skip
        assert rest.status_code == 204, rest.text
        ticket = http.post("/tickets", data={
            "csrf": http.cookies["kb_csrf"], "jeton": "apres-arret", "categorie": "abonnement",
            "sujet": "Export complet", "message": "Le voici.",
            "televersement": path.rsplit("/", 1)[1],
        }, files=[("fichiers", ("", b"", "application/octet-stream"))])  # fmt: skip
        assert ticket.status_code == 303, ticket.text[:300]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'kb.sqlite3'}")
    with engine.connect() as connection:
        [attached] = connection.execute(sa.select(tables.attachments)).all()
    engine.dispose()
    assert (attached.filename, attached.size) == ("export.bin", len(data))
    assert attached.sha256 == hashlib.sha256(data).hexdigest()
