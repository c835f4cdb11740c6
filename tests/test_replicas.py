"""Replicas sharing PostgreSQL and one data dir, each in its own PID namespace (as containers on
several hosts would be, all running kb as PID 1): one is killed and restarted while the other
receives an upload. No ticket is lost, and nothing is left behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
from conftest import write_tree
from test_faults import (
    MIB,
    MULTIPART_TAIL,
    MULTIPART_TYPE,
    SMALL_CONTENT,
    files_under,
    free_port,
    kb_env,
    logged_in,
    multipart_head,
    seeded,
)

from kb import tables
from kb.config import Settings
from kb.helpdesk.attachments import Store
from kb.knowledge.build import build

LEASE = 2  # seconds: a killed replica's files are reclaimed within a few seconds


class Replica:
    """`kb serve` as PID 1 of a new PID namespace, sharing the database and the data dir."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root, self.database_url, self.port = root, database_url, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            sys.executable,
            "-m",
            "kb.cli",
            "serve",
            "--content",
            "content",
            "--index",
            "index",
            "--port",
            str(self.port),
        ]
        env = kb_env(KB_DATA_DIR=self.root / "var", KB_DATABASE_URL=self.database_url,
                     KB_LEASE_SECONDS=LEASE, KB_SECRET_KEY="k" * 40)  # fmt: skip
        self.process = subprocess.Popen(command, cwd=self.root, env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "kb serve exited at start"
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError("kb serve did not answer in time")

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)


@pytest.fixture
def can_unshare() -> None:
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if probe.returncode != 0:
        reason = f"unshare --pid impossible ici : {probe.stderr.strip()}"
        if os.environ.get("KB_REQUIRE_FAULTS"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def replicas(tmp_path: Path, database_url: str, can_unshare: None) -> Iterator[list[Replica]]:
    write_tree(tmp_path / "content", SMALL_CONTENT)
    build(tmp_path / "content", tmp_path / "index")
    seeded(Settings.from_env({}, database_url=database_url))
    started = [Replica(tmp_path, database_url) for _ in range(2)]
    yield started
    for replica in started:
        if replica.process and replica.process.poll() is None:
            replica.kill()


def raw_upload(replica: Replica, cookies: str, head: bytes, size: int) -> socket.socket:
    """A multipart ticket with one file of `size` bytes, its headers sent, its body to come."""
    connection = socket.create_connection(("127.0.0.1", replica.port))
    connection.sendall(
        (
            f"POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n"
            f"Content-Type: {MULTIPART_TYPE}\r\nAccept: application/json\r\n"
            f"Content-Length: {len(head) + size + len(MULTIPART_TAIL)}\r\n\r\n"
        ).encode()
        + head
    )
    return connection


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_replica_killed_and_restarted_never_touches_the_other_ones_upload(
    replicas: list[Replica], tmp_path: Path, database_url: str
) -> None:
    a, b = replicas
    a.start()
    b.start()
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:  # two instances, both PID 1 in their namespace
        assert connection.execute(sa.select(tables.instances.c.pid)).scalars().all() == [1, 1]
    temp_root = tmp_path / "var" / "attachments" / "tmp"
    with logged_in(a.base) as client:
        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        csrf = client.cookies["kb_csrf"]

    size, chunk = 24 * MIB, bytes(range(256)) * 4096  # 1 MiB
    to_b = raw_upload(b, cookies, multipart_head(csrf, "sur-b"), size)
    to_b.sendall(chunk * 4)  # B is receiving: 4 MiB on disk, 20 to come
    to_a = raw_upload(a, cookies, multipart_head(csrf, "sur-a"), 50 * MIB)
    deadline = time.monotonic() + 30
    while sum(p.stat().st_size for p in files_under(temp_root)) < 6 * MIB:
        assert time.monotonic() < deadline, "the upload to A never reached the disk"
        to_a.sendall(chunk)
    owners = {p.name for p in temp_root.iterdir()}
    assert len(owners) == 2  # one folder per instance, although both are PID 1
    a.kill()  # in the middle of its own upload
    to_a.close()
    a.start()  # PID 1 again, a new instance id

    # A's leftovers go once its lease ends; B's upload in flight is never touched.
    deadline = time.monotonic() + 30
    while len([p for p in temp_root.iterdir() if files_under(p)]) > 1:
        assert time.monotonic() < deadline, "the killed replica's upload was never removed"
        time.sleep(0.2)
    sent = threading.Thread(target=lambda: [to_b.sendall(chunk) for _ in range(20)])
    sent.start()
    sent.join(timeout=60)
    to_b.sendall(MULTIPART_TAIL)
    answer = to_b.makefile("rb").read1(65536).decode()
    to_b.close()
    assert answer.startswith("HTTP/1.1 201"), answer[:300]

    with engine.connect() as connection:
        tickets = connection.execute(sa.select(tables.tickets.c.subject)).scalars().all()
        [attached] = connection.execute(sa.select(tables.attachments)).all()
    engine.dispose()
    assert tickets == ["Export complet"]
    assert attached.size == size
    expected = hashlib.sha256(chunk * 24).hexdigest()
    assert attached.sha256 == expected
    store = Store(tmp_path / "var")
    assert hashlib.sha256(store.final_path(attached.stored_as).read_bytes()).hexdigest() == expected
    root = tmp_path / "var" / "attachments"
    kept = [p for p in files_under(root) if p.relative_to(root).parts[0] != "tmp"]
    assert kept == [store.final_path(attached.stored_as)]  # nothing else, anywhere
    assert files_under(temp_root) == [] and files_under(tmp_path / "var" / "journal") == []
