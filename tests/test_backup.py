"""kb backup and kb restore: a round trip finds every ticket, attachment and account again."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PASSWORD, Run, Web, activated_account, log_in, postgres_database, read
from starlette.testclient import TestClient

from kb import db, tables
from kb.config import Settings
from kb.web.app import create_app


@pytest.fixture
def other_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind, where a backup is restored."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'kb.sqlite3'}"
        return
    with postgres_database() as url:
        yield url


def logged_in(web: Web) -> Web:
    """An establishment's account, logged in: it creates the tickets backed up."""
    activated_account(web)
    log_in(web)
    return web


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    """A help center on each database, an establishment logged in."""
    return logged_in(make_web({}, database_url=database_url))


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], None]:
    """Points the CLI at these settings: the app's under test, or where a backup goes back."""

    def point(settings: Settings) -> None:
        monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("KB_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("KB_CONTENT_DIR", str(settings.content_dir))
        monkeypatch.setenv("KB_INDEX_DIR", str(settings.index_dir))

    return point


def create_ticket(web: Web, subject: str, content: bytes) -> str:
    data = {
        "csrf": web.client.cookies["kb_csrf"],
        "jeton": hashlib.sha1(subject.encode()).hexdigest(),
        "categorie": "abonnement",
        "sujet": subject,
        "message": "Le bouton ne répond pas.",
    }
    files = [("fichiers", (f"{subject}.pdf", content, "application/pdf"))]
    response = web.client.post("/tickets", data=data, files=files)
    assert response.status_code == 303, response.text
    return response.headers["location"].split("/")[2].split("?")[0]


def picture(engine: sa.Engine) -> dict[str, object]:
    """What a restore must give back, read from the database."""
    with engine.connect() as connection:
        return {
            "tickets": sorted(
                connection.execute(sa.select(tables.tickets.c.reference, tables.tickets.c.subject))
            ),
            "attachments": sorted(
                connection.execute(
                    sa.select(
                        tables.attachments.c.filename,
                        tables.attachments.c.sha256,
                        tables.attachments.c.stored_as,
                    )
                )
            ),
            "accounts": sorted(
                connection.execute(
                    sa.select(
                        tables.accounts.c.login,
                        tables.accounts.c.email,
                        tables.accounts.c.password_hash,
                    )
                )
            ),
        }


def test_a_backup_restored_in_an_empty_place_serves_everything_again(
    web: Web,
    other_database_url: str,
    tmp_path: Path,
    cli: Callable[..., Run],
    use: Callable[[Settings], None],
) -> None:
    activated_account(web, "0010001W", email="paul@example.fr")
    contents = {f"Ticket {n}": os.urandom(1000 + n) for n in range(3)}
    subject_of = {
        create_ticket(web, subject, content): subject for subject, content in contents.items()
    }
    references = {reference: contents[subject] for reference, subject in subject_of.items()}
    before = picture(web.services.engine)

    use(web.settings)
    result = cli("backup", tmp_path / "sauvegarde")
    assert result.status == 0, result.err
    assert "Sauvegarde écrite dans" in result.out
    manifest = json.loads((tmp_path / "sauvegarde" / "manifest.json").read_text())
    saved = {entry["path"]: entry["sha256"] for entry in manifest["data"]}
    for _filename, digest, stored_as in before["attachments"]:  # type: ignore[attr-defined]
        assert saved[f"attachments/{stored_as}"] == digest
    assert "secret_key" in saved

    restored = Settings.from_env(
        {}, content_dir=tmp_path / "contenu", index_dir=web.settings.index_dir,
        data_dir=tmp_path / "restored", database_url=other_database_url,
    )  # fmt: skip
    use(restored)
    result = cli("restore", tmp_path / "sauvegarde")
    assert result.status == 0, result.err
    assert "Sauvegarde restaurée" in result.out
    # The content comes back too, into a content folder that was missing.
    original = {
        p.relative_to(web.settings.content_dir): p.read_bytes()
        for p in web.settings.content_dir.rglob("*")
        if p.is_file()
    }
    assert original and original == {
        p.relative_to(restored.content_dir): p.read_bytes()
        for p in restored.content_dir.rglob("*")
        if p.is_file()
    }

    app = create_app(restored, background=False)
    with TestClient(app, follow_redirects=False) as client:
        assert picture(app.state.services.engine) == before
        client.get("/")
        response = client.post(
            "/connexion",
            data={
                "csrf": client.cookies["kb_csrf"],
                "identifiant": "0750654D",
                "mot_de_passe": PASSWORD,
            },
        )
        assert response.status_code == 303
        for reference, content in references.items():
            ticket = read(client, f"/tickets/{reference}")
            assert ticket.status == 200
            download = client.get(ticket.link(f"{subject_of[reference]}.pdf"))
            assert download.content == content


def test_restore_refuses_to_overwrite_without_force(
    web: Web, tmp_path: Path, cli: Callable[..., Run], use: Callable[[Settings], None]
) -> None:
    reference = create_ticket(web, "Avant", b"avant" * 100)
    use(web.settings)
    assert cli("backup", tmp_path / "sauvegarde").status == 0
    create_ticket(web, "Après", b"apres" * 100)

    refused = cli("restore", tmp_path / "sauvegarde")
    assert refused.status == 1
    assert "La restauration écraserait des données existantes" in refused.err
    assert "relancez avec --force" in refused.err
    assert len(picture(web.services.engine)["tickets"]) == 2  # type: ignore[arg-type]

    web.services.engine.dispose()
    forced = cli("restore", "--force", tmp_path / "sauvegarde")
    assert forced.status == 0, forced.err
    tickets = picture(web.services.engine)["tickets"]
    assert [t[0] for t in tickets] == [reference]  # type: ignore[union-attr]
    files = [p for p in (web.settings.data_dir / "attachments").rglob("*") if p.is_file()]
    assert len(files) == 1  # the later ticket's file went with its row


def test_a_damaged_backup_is_refused_before_anything_is_written(
    make_web: Callable[..., Web],
    tmp_path: Path,
    cli: Callable[..., Run],
    use: Callable[[Settings], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web = logged_in(make_web({}))
    create_ticket(web, "Un", b"x" * 5000)
    use(web.settings)
    assert cli("backup", tmp_path / "sauvegarde").status == 0
    (attachment,) = (tmp_path / "sauvegarde" / "data" / "attachments").rglob("*/*/*")
    attachment.write_bytes(b"y" * 5000)

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "vide"))
    monkeypatch.setenv("KB_DATABASE_URL", f"sqlite:///{tmp_path / 'vide' / 'kb.sqlite3'}")
    result = cli("restore", tmp_path / "sauvegarde")
    assert result.status == 1
    relative = attachment.relative_to(tmp_path / "sauvegarde").as_posix()
    assert result.err.splitlines() == [
        "kb: Sauvegarde endommagée, rien n'a été restauré :",
        f"kb: {relative} : contenu modifié depuis la sauvegarde (sha256)",
    ]
    assert not (tmp_path / "vide" / "kb.sqlite3").exists()


def test_backup_refuses_a_folder_that_is_not_empty(
    make_web: Callable[..., Web],
    tmp_path: Path,
    cli: Callable[..., Run],
    use: Callable[[Settings], None],
) -> None:
    use(make_web({}).settings)
    (tmp_path / "plein").mkdir()
    (tmp_path / "plein" / "x").write_text("x")
    result = cli("backup", tmp_path / "plein")
    assert result.status == 1
    assert (
        result.err
        == f"kb: {tmp_path / 'plein'} existe déjà et n'est pas vide : choisissez un autre dossier.\n"
    )
    result = cli("restore", tmp_path / "nulle-part")
    assert result.status == 1
    assert "n'est pas une sauvegarde de kb : manifest.json manquant" in result.err


def test_a_backup_taken_while_tickets_are_created_is_consistent(
    web: Web,
    other_database_url: str,
    tmp_path: Path,
    cli: Callable[..., Run],
    use: Callable[[Settings], None],
) -> None:
    """Every attachment row the copy holds has its file, with the hash the row records."""
    stop = threading.Event()
    created: list[str] = []

    def keep_creating() -> None:
        n = 0
        while not stop.is_set():
            created.append(create_ticket(web, f"Pendant {n}", os.urandom(20_000)))
            n += 1

    create_ticket(web, "Avant", os.urandom(20_000))
    worker = threading.Thread(target=keep_creating)
    worker.start()
    try:
        use(web.settings)
        result = cli("backup", tmp_path / "sauvegarde")
    finally:
        stop.set()
        worker.join()
    assert result.status == 0, result.err
    restored = Settings.from_env(
        {}, data_dir=tmp_path / "restored", database_url=other_database_url,
        content_dir=web.settings.content_dir,
    )  # fmt: skip
    use(restored)
    assert cli("restore", tmp_path / "sauvegarde").status == 0
    engine = db.make_engine(restored)
    try:
        rows = picture(engine)["attachments"]
    finally:
        engine.dispose()
    assert rows
    root = restored.data_dir / "attachments"
    for _filename, digest, stored_as in rows:  # type: ignore[attr-defined]
        assert hashlib.sha256((root / stored_as).read_bytes()).hexdigest() == digest
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk == {stored_as for _f, _d, stored_as in rows}  # type: ignore[attr-defined]
