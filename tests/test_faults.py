"""Faults: kb killed mid-build, mid-upload and mid-ticket, a full disk, PostgreSQL going away,
a corrupted index. Each time: a clear French answer, nothing half-written, and recovery."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
from conftest import (
    CATEGORIES,
    PASSWORD,
    Page,
    Run,
    Web,
    activated_account,
    article,
    read,
    write_tree,
)
from starlette.applications import Starlette
from starlette.testclient import TestClient

from kb import db, tables, testing
from kb.config import Settings
from kb.helpdesk import accounts
from kb.helpdesk.attachments import Store
from kb.knowledge.build import build
from kb.testing import free_port
from kb.web.app import create_app

MIB = 1024 * 1024
KB = [sys.executable, "-m", "kb.cli"]
UAI = "0750654D"


def seeded(settings: Settings) -> None:
    """The database migrated, with Marie Curie's establishment (UAI) and the tests' password."""
    engine = db.make_engine(settings)
    try:
        db.upgrade(engine)
        account, _ = accounts.save(
            engine, role="etablissement", login=UAI, establishment="Lycée Louis-le-Grand",
            first_name="Marie", last_name="Curie", email="marie@example.fr",
        )  # fmt: skip
        accounts.set_password(engine, account, PASSWORD)
    finally:
        engine.dispose()


BOUNDARY = "kb-panne-0123456789"

SMALL_CONTENT = {
    **CATEGORIES,
    "compte-utilisateur/mot-de-passe.md": article(
        "Réinitialiser son mot de passe", "Cliquez sur « Mot de passe oublié » puis suivez le lien."
    ),
    "abonnement/facture.md": article("Obtenir une facture", "Les factures sont dans l'espace."),
}


def kb_env(**variables: str | Path) -> dict[str, str]:
    """The environment of a kb subprocess: none of the caller's KB_* settings, these instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update({k: str(v) for k, v in variables.items()})
    return env


def run_kb(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KB, *map(str, args)], env=kb_env(), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def count_rows(url: str, *tables: sa.Table) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in tables
            }
    finally:
        engine.dispose()


# --- 1. kb build killed while it indexes -----------------------------------------------------

FILLER = (
    "compte établissement enseignant élève classe export import fichier tableau paramètre "
    "connexion synchronisation annuaire emploi temps salle cours devoir note bulletin période "
    "trimestre conseil responsable messagerie notification document partage droit accès profil"
)
WORDS = FILLER.split()


def many_articles(count: int, word: str) -> dict[str, str]:
    """`count` articles of a few hundred words, each naming `word`: enough to index for seconds."""
    rng = random.Random(7)
    files = {}
    for i in range(count):
        body = " ".join(rng.choice(WORDS) for _ in range(200))
        files[f"utilisation/procedure-{i:04d}.md"] = article(
            f"Procédure {i}, {rng.choice(WORDS)} et {rng.choice(WORDS)}", f"{body} {word}."
        )
    return files


def test_a_build_killed_while_indexing_leaves_the_previous_index_serving(tmp_path: Path) -> None:
    content = write_tree(tmp_path / "content", SMALL_CONTENT)
    index = tmp_path / "index"
    assert run_kb("build", "--content", content, "--index", index).returncode == 0
    live = (index / "CURRENT").read_text().strip()
    before = run_kb("search", "mot de passe", "--index", index)
    assert "Réinitialiser son mot de passe" in before.stdout

    write_tree(content, many_articles(250, "zéphyrin"))
    building = subprocess.Popen(
        [*KB, "build", "--content", str(content), "--index", str(index)],
        env=kb_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert building.stderr is not None
        for line in building.stderr:  # a progress line: the new generation is being written
            if "articles indexés" in line:
                break
    finally:
        building.kill()  # SIGKILL: no cleanup of any kind
        building.wait(timeout=20)
        building.stderr.close()  # type: ignore[union-attr]
    assert building.returncode == -signal.SIGKILL
    unfinished = [p.name for p in index.glob("gen-*") if not (p / "build.json").exists()]
    assert unfinished, "the build was not killed in the middle of indexing"

    assert (index / "CURRENT").read_text().strip() == live
    after = run_kb("search", "mot de passe", "--index", index)
    assert (after.returncode, after.stdout) == (0, before.stdout)
    assert "Aucun article ne correspond" in run_kb("search", "zéphyrin", "--index", index).stdout

    rebuilt = run_kb("build", "--content", content, "--index", index)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Index construit : 252 articles" in rebuilt.stdout
    new_live = (index / "CURRENT").read_text().strip()
    generations = {p.name for p in index.glob("gen-*")}
    assert generations == {live, new_live}  # the live one and the one before, nothing else
    assert all((index / name / "build.json").is_file() for name in generations)
    assert list(index.glob(".*.tmp")) == []
    assert (
        "250 résultat(s) pour « zéphyrin »" in run_kb("search", "zéphyrin", "--index", index).stdout
    )


# --- 2. kb serve killed during an upload and during a ticket's creation ----------------------

# kb serve, dying the instant the first attachment is in its final place, its rows not committed.
DIES_WHILE_CREATING = """
import os, signal, sys
from kb.helpdesk import attachments
keep = attachments.Store.keep
def keep_then_die(self, *args):
    stored_as = keep(self, *args)
    os.kill(os.getpid(), signal.SIGKILL)
    return stored_as
attachments.Store.keep = keep_then_die
from kb.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Served:
    """A help center on disk (content, index, data dir with an account), for kb serve."""

    root: Path
    port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "var"

    @property
    def database(self) -> str:
        return f"sqlite:///{self.data_dir / 'kb.sqlite3'}"

    def start(self, dying: bool = False) -> subprocess.Popen[bytes]:
        program = [sys.executable, "-c", DIES_WHILE_CREATING] if dying else KB
        process = subprocess.Popen(
            [*program, "serve", "--content", "content", "--index", "index",
             "--port", str(self.port)],
            cwd=self.root, env=kb_env(KB_DATA_DIR=self.data_dir, KB_LEASE_SECONDS=2),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, "kb serve exited at start"
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return process
            time.sleep(0.1)
        raise AssertionError("kb serve did not answer in time")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """Content built and an activated account: kb serve starts in a second."""
    site = Served(tmp_path, free_port())
    write_tree(tmp_path / "content", SMALL_CONTENT)
    build(tmp_path / "content", tmp_path / "index")
    seeded(Settings.from_env({}, data_dir=site.data_dir))
    yield site
    for process in site.processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


@contextlib.contextmanager
def logged_in(base: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=base, timeout=30) as client:
        client.get("/connexion")
        response = client.post(
            "/connexion",
            data={"csrf": client.cookies["kb_csrf"], "identifiant": UAI, "mot_de_passe": PASSWORD},
        )
        assert response.status_code == 303, response.text[:300]
        yield client


def multipart_head(csrf: str, token: str = "panne") -> bytes:
    fields = {"csrf": csrf, "jeton": token, "categorie": "abonnement",
              "sujet": "Export complet", "message": "Voici l'export."}  # fmt: skip
    text = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    return (
        text + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fichiers"; '
        f'filename="export.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def leftovers_removed(site: Served) -> None:
    """A killed process's lease (KB_LEASE_SECONDS=2 here) ends; then its leftovers go."""
    deadline = time.monotonic() + 30
    while files_under(site.data_dir / "attachments" / "tmp") or files_under(
        site.data_dir / "journal"
    ):
        assert time.monotonic() < deadline, "what the killed process left is still there"
        time.sleep(0.2)
    time.sleep(0.5)  # the folders go right after their files


def assert_nothing_half_written(site: Served) -> None:
    leftovers_removed(site)
    rows = count_rows(site.database, tables.tickets, tables.messages, tables.attachments)
    assert rows == {"tickets": 0, "messages": 0, "attachments": 0}
    assert files_under(site.data_dir / "attachments") == []
    assert files_under(site.data_dir / "journal") == []
    for folder in (site.data_dir / "attachments" / "tmp", site.data_dir / "journal"):
        assert not folder.exists() or list(folder.iterdir()) == []  # the dead process's, gone


def test_serve_killed_during_an_upload_keeps_no_ticket_and_no_file(served: Served) -> None:
    server = served.start()
    with logged_in(served.base) as client:
        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        head = multipart_head(client.cookies["kb_csrf"])
    temp_root = served.data_dir / "attachments" / "tmp"
    with socket.create_connection(("127.0.0.1", served.port)) as connection:
        connection.sendall(
            (
                f"POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n"
                f"Content-Type: {MULTIPART_TYPE}\r\n"
                f"Content-Length: {len(head) + 500 * MIB + len(MULTIPART_TAIL)}\r\n\r\n"
            ).encode()
            + head
        )
        chunk = b"\x00kb" * (MIB // 3)
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size > 2 * MIB for p in files_under(temp_root)):
            assert time.monotonic() < deadline, "the upload never reached the disk"
            connection.sendall(chunk)
        os.killpg(server.pid, signal.SIGKILL)  # part of the file on disk, the rest to come
        server.wait(timeout=20)
    [temp_dir] = temp_root.iterdir()  # named by the process's instance id, not its PID
    assert files_under(temp_dir)  # what the dead process left, for its lease's end

    served.start()
    assert_nothing_half_written(served)
    assert not temp_dir.exists()
    with logged_in(served.base) as client:  # and the help center works again
        assert client.get("/tickets").status_code == 200


def test_serve_killed_during_a_ticket_creation_keeps_no_ticket_and_no_file(
    served: Served,
) -> None:
    server = served.start(dying=True)
    with logged_in(served.base) as client, pytest.raises(httpx2.TransportError):
        client.post(
            "/tickets",
            content=multipart_head(client.cookies["kb_csrf"]) + b"x" * MIB + MULTIPART_TAIL,
            headers={"content-type": MULTIPART_TYPE},
        )
    server.wait(timeout=20)
    assert server.returncode == -signal.SIGKILL
    root = served.data_dir / "attachments"
    kept = [p for p in files_under(root) if p.relative_to(root).parts[0] != "tmp"]
    assert kept, "kb serve died before the attachment was in its final place"

    served.start()
    assert_nothing_half_written(served)
    with logged_in(served.base) as client:
        assert client.get("/tickets").status_code == 200


def test_a_dead_process_moves_are_undone_unless_their_rows_were_committed(tmp_path: Path) -> None:
    store = Store(tmp_path / "var")
    upload = tmp_path / "var" / "uploads" / "reprenable"  # a finished resumable upload
    write_tree(tmp_path / "var", {"uploads/reprenable": b"tus"})
    store.temp_dir.mkdir(parents=True)
    (store.temp_dir / "recu").write_bytes(b"formulaire")
    (store.temp_dir / "perdu").write_bytes(b"jamais valide")
    committed = store.keep(store.temp_dir / "recu", 2026, 1)
    moved_back = store.keep(upload, 2026, 1)
    deleted = store.keep(store.temp_dir / "perdu", 2026, 1)
    store.temp_dir.rename(store.temp_root / "dead-instance")  # its lease has ended
    store.journal_dir.rename(store.journal_root / "dead-instance")

    asked: list[list[str]] = []
    attached = lambda names: asked.append(sorted(names)) or {committed}  # noqa: E731
    assert store.remove_leftovers(attached, alive=(), quiet_seconds=0) == 2
    assert asked == [sorted([committed, moved_back, deleted])]
    assert store.final_path(committed).read_bytes() == b"formulaire"
    assert upload.read_bytes() == b"tus"  # back where a ticket can take it again
    assert not store.final_path(moved_back).exists() and not store.final_path(deleted).exists()
    assert list(store.temp_root.iterdir()) == list(store.journal_root.iterdir()) == []


# --- 3. the disk fills up during an upload ---------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs as the data dir (the database lives elsewhere)."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(data_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        reason = f"mount -t tmpfs impossible ici : {mounted.stderr.strip() or mounted.returncode}"
        if os.environ.get("KB_REQUIRE_FAULTS"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(data_dir)], check=False)


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """The app behind a real uvicorn on a free port, in a thread."""
    with testing.serving(app, log_level="critical") as base:
        yield base


def post_ticket(client: httpx2.Client, size: int, token: str, accept: str) -> httpx2.Response:
    head = multipart_head(client.cookies["kb_csrf"], token)

    def body() -> Iterator[bytes]:
        yield head
        block, left = b"\x01kb" * (MIB // 3), size
        while left:
            yield block[: min(left, len(block))]
            left -= min(left, len(block))
        yield MULTIPART_TAIL

    return client.post(
        "/tickets", content=body(),
        headers={"content-type": MULTIPART_TYPE, "accept": accept,
                 "content-length": str(len(head) + size + len(MULTIPART_TAIL))},
    )  # fmt: skip


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_full_disk_during_an_upload_gives_a_clear_error_and_keeps_serving(
    small_disk: Path, make_web: Callable[..., Web], tmp_path: Path, accept: str
) -> None:
    web = make_web(SMALL_CONTENT, database_url=f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    activated_account(web)
    with serving(web.app) as base, logged_in(base) as client:
        response = post_ticket(client, 30 * MIB, "plein", accept)
        assert response.status_code == 507, response.text[:500]
        message = "Plus assez d'espace disque pour enregistrer vos pièces jointes"
        if accept == "application/json":
            error = response.json()["error"]
            assert (error["status"], error["code"]) == (507, "espace_insuffisant")
            assert error["message"].startswith(message)
        else:
            assert message in Page(response).text
            assert "Voici l'export." in Page(response).text  # the message typed is still there
            assert "Traceback" not in response.text
        assert files_under(small_disk / "attachments") == []
        assert count_rows(web.settings.database, tables.tickets, tables.attachments) == {
            "tickets": 0, "attachments": 0,
        }  # fmt: skip
        assert client.get("/tickets").status_code == 200  # the service keeps serving
        small = post_ticket(client, 2 * MIB, "petit", "application/json")
        assert small.status_code == 201, small.text[:500]
    assert count_rows(web.settings.database, tables.tickets, tables.attachments) == {
        "tickets": 1, "attachments": 1,
    }  # fmt: skip


# --- 4. PostgreSQL stopped and started again under a running kb ------------------------------


@dataclass
class Postgres:
    """A PostgreSQL cluster of this test's own: stopping it disturbs nobody else."""

    root: Path
    port: int
    command: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.command, "-D", str(self.root / "data"), *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@pytest.fixture
def private_postgres() -> Iterator[Postgres]:
    bindir = _postgres_bin()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = "PostgreSQL (initdb, pg_ctl) absent : pas de panne de base à simuler"
        if os.environ.get("KB_REQUIRE_FAULTS"):
            pytest.fail(reason)
        pytest.skip(reason)
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="kb-pannes-pg-"))
    if as_owner:
        shutil.chown(root, "postgres")
    subprocess.run(
        [*as_owner, str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust",
         "-U", "postgres", "-E", "UTF8", "--no-locale", "-N", "--no-instructions"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    cluster = Postgres(root, free_port(), [*as_owner, str(bindir / "pg_ctl")])
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_going_away_gives_a_french_503_and_kb_recovers_by_itself(
    private_postgres: Postgres, make_web: Callable[..., Web]
) -> None:
    admin = sa.create_engine(private_postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "kb_pannes"'))
    admin.dispose()
    web = make_web(
        SMALL_CONTENT, database_url=private_postgres.url.rsplit("/", 1)[0] + "/kb_pannes"
    )
    activated_account(web)
    with serving(web.app) as base, logged_in(base) as member, httpx2.Client(base_url=base) as anon:
        assert member.get("/tickets").status_code == 200
        anon.get("/connexion")
        login = {"csrf": anon.cookies["kb_csrf"], "identifiant": UAI, "mot_de_passe": PASSWORD}
        private_postgres.stop()
        try:
            for response in (member.get("/tickets"), anon.post("/connexion", data=login)):
                assert response.status_code == 503, response.text[:500]
                assert Page(response).heading == "Service momentanément indisponible"
                assert "Traceback" not in response.text
            as_json = member.get("/tickets", headers={"accept": "application/json"})
            assert as_json.status_code == 503
            assert as_json.json()["error"]["code"] == "base_indisponible"
            # The replica stays in rotation: articles and search still work, and say so.
            health = anon.get("/readyz")
            assert health.status_code == 200
            assert health.json()["database"] == "unavailable"
            assert health.json()["status"] == "degraded"
            assert anon.get("/livez").status_code == 200
            # What needs no database keeps working: articles and search.
            assert anon.get("/articles/mot-de-passe").status_code == 200
            assert (
                'href="/articles/facture"' in anon.get("/recherche", params={"q": "facture"}).text
            )
            assert anon.get("/api/search", params={"q": "facture"}).status_code == 200
        finally:
            private_postgres.start()
        assert anon.get("/healthz").status_code == 200  # without restarting kb
        assert member.get("/tickets").status_code == 200
        posted = post_ticket(member, 1000, "apres", "application/json")
        assert posted.status_code == 201, posted.text[:500]


# --- 5. a corrupted index -------------------------------------------------------------------


def corrupt(index: Path, kind: str) -> None:
    generation = index / (index / "CURRENT").read_text().strip()
    segment = max(generation.glob("*.seg"), key=lambda p: p.stat().st_size)
    match kind:
        case "segment tronqué":
            os.truncate(segment, segment.stat().st_size // 2)
        case "segment vidé":
            os.truncate(segment, 0)
        case "segment altéré":  # 64 bytes flipped: Whoosh alone would read on, and answer wrong
            data = bytearray(segment.read_bytes())
            middle = len(data) // 3
            data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
            segment.write_bytes(bytes(data))
        case "build.json illisible":
            (generation / "build.json").write_text('{"schema": "2", "cat')
        case "build.json vide":
            (generation / "build.json").write_text(json.dumps({}))
        case "CURRENT vers rien":
            (index / "CURRENT").write_text("gen-999999\n")
        case "CURRENT illisible":
            (index / "CURRENT").write_bytes(b"\x00\xff\xfe")


CORRUPTIONS = [
    "segment tronqué", "segment vidé", "segment altéré", "build.json illisible",
    "build.json vide", "CURRENT vers rien", "CURRENT illisible",
]  # fmt: skip


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupted_index_gives_a_clear_error_and_build_full_repairs_it(
    tmp_path: Path, cli: Callable[..., Run], corruption: str
) -> None:
    content = write_tree(tmp_path / "content", SMALL_CONTENT)
    index = tmp_path / "index"
    build(content, index)
    corrupt(index, corruption)

    searched = cli("search", "facture", "--index", index)
    assert searched.status == 1, searched.out
    assert searched.err.startswith("kb: L'index de recherche est endommagé")
    assert "kb build --full" in searched.err

    settings = Settings.from_env(
        {}, content_dir=content, index_dir=index, data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'kb.sqlite3'}",
    )  # fmt: skip
    with TestClient(create_app(settings, background=False)) as client:
        page = client.get("/recherche", params={"q": "facture"})
        assert page.status_code == 503
        assert Page(page).heading == "Service momentanément indisponible"
        assert "L'index de recherche est endommagé" in Page(page).text
        api = client.get("/api/search", params={"q": "facture"})
        assert api.status_code == 503 and api.json()["error"]["code"] == "index_endommage"
        health = client.get("/readyz")  # nothing to search with: out of rotation
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert "endommagé" in health.json()["reason"]
        assert client.get("/livez").status_code == 200  # but not to be restarted

        repaired = cli("build", "--full", "--content", content, "--index", index)
        assert repaired.status == 0, repaired.err
        found = read(client, "/recherche", q="facture")
        assert "/articles/facture" in [href for href, _ in found.links]
        assert client.get("/healthz").status_code == 200
    assert "1 résultat(s)" in cli("search", "facture", "--index", index).out


def test_an_incremental_build_refuses_to_carry_a_damaged_segment_over(
    tmp_path: Path, cli: Callable[..., Run]
) -> None:
    content = write_tree(tmp_path / "content", SMALL_CONTENT)
    index = tmp_path / "index"
    build(content, index)
    live = (index / "CURRENT").read_text()
    corrupt(index, "segment altéré")
    write_tree(content, {"abonnement/devis.md": article("Demander un devis")})

    refused = cli("build", "--content", content, "--index", index)
    assert refused.status == 1
    assert refused.err.startswith("kb: L'index de recherche est endommagé (gen-000001/MAIN_")
    assert refused.err.rstrip().endswith("reconstruisez-le avec « kb build --full ».")
    assert (index / "CURRENT").read_text() == live
    assert [p.name for p in index.glob("gen-*")] == [live.strip()]
