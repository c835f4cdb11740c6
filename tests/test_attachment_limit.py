"""One size limit for a message's attachments, whatever path they took: the form's files, the
finished resumable uploads it names, or both; at the limit it goes through, one byte over it is
refused in French and nothing is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Page, Web, activated_account, log_in

from kb import tables

LIMIT = 64 * 1024
# (sizes sent in the form, sizes sent through tus): each adds up to LIMIT
MIXES = {
    "formulaire": ([LIMIT // 2, LIMIT // 2], []),
    "reprise": ([], [LIMIT // 2, LIMIT // 2]),
    "reprise-et-formulaire": ([LIMIT // 4], [LIMIT // 2, LIMIT // 4]),
}


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = make_web({}, database_url=database_url, max_upload_bytes=LIMIT)
    activated_account(web)
    assert log_in(web).status_code == 303
    return web


def tus_upload(web: Web, size: int, name: str) -> str:
    """A finished resumable upload of `size` bytes; its id."""
    headers = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": web.client.cookies["kb_csrf"]}
    created = web.client.post(
        "/api/uploads",
        headers={**headers, "Upload-Length": str(size), "Upload-Metadata": ""},
    )
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    patched = web.client.patch(
        url,
        content=b"r" * size,
        headers={**headers, "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert patched.status_code == 204, patched.text
    return url.rsplit("/", 1)[1]


def sizes(mix: str, over: bool) -> tuple[list[int], list[int]]:
    """The mix, one byte more on its last file when `over`."""
    form, resumable = (list(s) for s in MIXES[mix])
    if over:
        (resumable if resumable else form)[-1] += 1
    return form, resumable


def send(web: Web, url: str, form_sizes: list[int], upload_ids: list[str], **fields: str):  # type: ignore[no-untyped-def]
    files = [("fichiers", (f"f{i}.bin", b"f" * n, "application/octet-stream"))
             for i, n in enumerate(form_sizes)] or [("fichiers", ("", b"", "x"))]  # fmt: skip
    data = {"csrf": web.client.cookies["kb_csrf"], "message": "Voici les fichiers.", **fields}
    data["televersement"] = upload_ids  # type: ignore[assignment]
    return web.client.post(url, data=data, files=files, headers={"accept": "application/json"})


def rows(web: Web, table: sa.Table) -> list[sa.Row]:  # type: ignore[type-arg]
    with web.services.engine.connect() as connection:
        return list(connection.execute(sa.select(table)))


def stored_files(web: Web) -> list[Path]:
    root = web.services.store.root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def new_ticket(web: Web, form_sizes: list[int], upload_ids: list[str]):  # type: ignore[no-untyped-def]
    return send(web, "/tickets", form_sizes, upload_ids, jeton="limite", categorie="abonnement",
                sujet="Fichiers")  # fmt: skip


@pytest.mark.parametrize("mix", MIXES)
def test_a_new_ticket_at_the_limit_keeps_every_file(web: Web, mix: str) -> None:
    form_sizes, resumable = sizes(mix, over=False)
    ids = [tus_upload(web, n, f"r{i}.bin") for i, n in enumerate(resumable)]
    response = new_ticket(web, form_sizes, ids)
    assert response.status_code == 201, response.text
    attached = sorted(a.size for a in rows(web, tables.attachments))
    assert attached == sorted(form_sizes + resumable) and sum(attached) == LIMIT
    assert len(stored_files(web)) == len(attached)
    assert rows(web, tables.uploads) == []


@pytest.mark.parametrize("mix", MIXES)
def test_a_new_ticket_one_byte_over_is_refused_and_nothing_is_kept(web: Web, mix: str) -> None:
    form_sizes, resumable = sizes(mix, over=True)
    ids = [tus_upload(web, n, f"r{i}.bin") for i, n in enumerate(resumable)]
    response = new_ticket(web, form_sizes, ids)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "envoi_trop_volumineux"
    assert "dépassent la taille autorisée (64 Ko en tout)" in error["message"]
    assert rows(web, tables.tickets) == [] and rows(web, tables.attachments) == []
    assert stored_files(web) == []  # neither the form's files nor a moved upload
    # The finished uploads stay the account's, whole, to be attached to a smaller message.
    kept = rows(web, tables.uploads)
    assert sorted(u.id for u in kept) == sorted(ids)
    assert all(web.services.uploads.path(i).stat().st_size > 0 for i in ids)


@pytest.mark.parametrize("over", [False, True], ids=["a-la-limite", "un-octet-de-trop"])
@pytest.mark.parametrize("mix", MIXES)
def test_a_reply_holds_the_same_limit(web: Web, mix: str, over: bool) -> None:
    created = new_ticket(web, [], [])
    url = created.json()["url"].split("?")[0] + "/reponses"
    form_sizes, resumable = sizes(mix, over)
    ids = [tus_upload(web, n, f"r{i}.bin") for i, n in enumerate(resumable)]
    response = send(web, url, form_sizes, ids)
    if over:
        assert response.status_code == 413
        assert "64 Ko en tout" in response.json()["error"]["message"]
        assert len(rows(web, tables.messages)) == 1 and rows(web, tables.attachments) == []
        assert stored_files(web) == []
    else:
        assert response.status_code == 200, response.text
        assert sum(a.size for a in rows(web, tables.attachments)) == LIMIT


def test_an_upload_named_twice_counts_once(web: Web) -> None:
    upload_id = tus_upload(web, LIMIT, "r.bin")
    response = new_ticket(web, [], [upload_id, upload_id])
    assert response.status_code == 201, response.text
    assert [a.size for a in rows(web, tables.attachments)] == [LIMIT]


def test_the_form_page_says_why_and_keeps_what_was_typed(web: Web) -> None:
    ids = [tus_upload(web, LIMIT // 2, "a.bin"), tus_upload(web, LIMIT // 2 + 1, "b.bin")]
    response = web.client.post(
        "/tickets",
        data={"csrf": web.client.cookies["kb_csrf"], "jeton": "page", "categorie": "abonnement",
              "sujet": "Deux exports", "message": "Les voici.", "televersement": ids},
        files=[("fichiers", ("", b"", "x"))],
    )  # fmt: skip
    assert response.status_code == 413
    refused = Page(response)
    assert "Les pièces jointes dépassent la taille autorisée (64 Ko en tout)" in refused.text
    assert refused.field(name="sujet")["value"] == "Deux exports"
    assert refused.field(name="message")["value"] == "Les voici."
