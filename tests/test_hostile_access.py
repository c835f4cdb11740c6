"""Another establishment's ids, and forms without their CSRF token: refused on every route."""

from __future__ import annotations

from collections.abc import Callable

from conftest import (
    Refusals,
    Web,
    activated_account,
    agent,
    article,
    attachment_ids,
    client_for,
    link_in,
    new_ticket,
    outbox,
    seen,
    state_of,
    tus_upload,
)

from kb.helpdesk import accounts, notifications


def test_another_establishments_ids_are_refused_on_every_route(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    activated_account(web, "0750655E", email="jean@example.fr")
    agent(web)
    mine, other = client_for(web, "0750654D"), client_for(web, "0750655E")
    support = client_for(web, "sam@cpro.fr")
    my_ref = new_ticket(mine, files=[("fichiers", ("secret.txt", b"secret", "text/plain"))])
    note = support.post(
        f"/support/tickets/{my_ref}/reponses",
        data={"csrf": support.cookies["kb_csrf"], "message": "Note", "interne": "oui"},
        files=[("fichiers", ("note.txt", b"internal", "text/plain"))],
    )
    assert note.status_code == 303
    their_ref = new_ticket(other, files=[("fichiers", ("theirs.txt", b"theirs", "text/plain"))])
    ids = attachment_ids(web)
    secret, internal, theirs = ids["secret.txt"], ids["note.txt"], ids["theirs.txt"]
    unfinished = tus_upload(mine, b"abc", complete=False)
    finished = tus_upload(mine, b"secret upload", complete=True)
    before = state_of(web)

    check = Refusals()
    token = other.cookies["kb_csrf"]
    empty_file = [("fichiers", ("", b"", "application/octet-stream"))]
    json_accept = {"accept": "application/json"}
    for path in (
        f"/tickets/{my_ref}",
        f"/tickets/{my_ref}/pieces-jointes/{secret}",
        f"/tickets/{my_ref}/pieces-jointes/{internal}",
        f"/tickets/{my_ref}/pieces-jointes/{theirs}",
        f"/tickets/{their_ref}/pieces-jointes/{secret}",
        f"/tickets/{their_ref}/pieces-jointes/{internal}",
        f"/tickets/{my_ref.lower()}",
        f"/tickets/{my_ref} ",
        f"/tickets/{my_ref}'%20OR%20'1'='1",
    ):
        response = other.get(path)
        check.expect(f"GET {path}", response, 404)
        if b"secret" in response.content or b"internal" in response.content:
            check.failures.append(f"GET {path}: shows another establishment's file")
    check.expect(
        f"GET /tickets/{my_ref} as JSON", other.get(f"/tickets/{my_ref}", headers=json_accept), 404
    )
    for data in (
        {"message": "Je réponds à leur place."},
        {"message": "x", "televersement": finished},
    ):
        for headers in ({}, json_accept):
            check.expect(
                f"POST /tickets/{my_ref}/reponses {sorted(data)} {headers}",
                other.post(f"/tickets/{my_ref}/reponses", data={"csrf": token, **data},
                           files=empty_file, headers=headers),
                404,
            )  # fmt: skip
    for wanted in ("resolu", "rouvrir"):
        check.expect(
            f"POST /tickets/{my_ref}/statut {wanted}",
            other.post(f"/tickets/{my_ref}/statut", data={"csrf": token, "statut": wanted}),
            404,
        )
    # Their own ticket, someone else's finished upload: refused, and the upload stays where it is.
    check.expect(
        f"POST /tickets/{their_ref}/reponses with another's upload",
        other.post(f"/tickets/{their_ref}/reponses",
                   data={"csrf": token, "message": "x", "televersement": finished}, files=empty_file),
        400,
    )  # fmt: skip
    check.expect(
        "POST /tickets with another's finished upload",
        other.post("/tickets", data={"csrf": token, "jeton": "vol", "categorie": "abonnement",
                                     "sujet": "S", "message": "M", "televersement": finished},
                   files=empty_file),
        400,
    )  # fmt: skip
    for path in (f"/support/tickets/{my_ref}", f"/support/tickets/{my_ref}/reponses",
                 f"/support/tickets/{my_ref}/statut"):  # fmt: skip
        method = "GET" if path.endswith(my_ref) else "POST"
        response = other.request(method, path, data={"csrf": token, "message": "x", "statut": "resolu"}
                                 if method == "POST" else None)  # fmt: skip
        check.expect(f"{method} {path}", response, 403)
    tus = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": token}
    patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    for upload_id in (unfinished, finished):
        check.expect(f"HEAD {upload_id}", other.head(f"/api/uploads/{upload_id}", headers=tus), 404)
        check.expect(
            f"PATCH {upload_id}",
            other.patch(f"/api/uploads/{upload_id}", content=b"xyz", headers=patch),
            404,
        )
        check.expect(
            f"DELETE {upload_id}", other.delete(f"/api/uploads/{upload_id}", headers=tus), 404
        )
    # The owner does not see the internal note's file either.
    check.expect(
        "owner GET internal note's file",
        mine.get(f"/tickets/{my_ref}/pieces-jointes/{internal}"),
        404,
    )
    # Not found and not theirs look the same: the answer tells nothing about who has what.
    foreign, missing = other.get(f"/tickets/{my_ref}"), other.get("/tickets/T-2099-999999")
    if seen(foreign.text).text.replace(my_ref, "") != seen(missing.text).text.replace(
        "T-2099-999999", ""
    ):
        check.failures.append("a foreign ticket and a missing one get different pages")
    assert not check.failures, "\n".join(check.failures)
    assert state_of(web) == before
    assert mine.get(f"/tickets/{my_ref}/pieces-jointes/{secret}").content == b"secret"


# --- requests without their CSRF token ----------------------------------------------------------


def test_every_form_without_its_csrf_token_is_refused(make_web: Callable[..., Web]) -> None:
    web = make_web({"abonnement/a.md": article("A")})
    activated_account(web)
    agent(web)
    school, support = client_for(web, "0750654D"), client_for(web, "sam@cpro.fr")
    reference = new_ticket(school)
    upload_id = tus_upload(school, b"abc", complete=False)
    pending, _ = accounts.save(web.services.engine, role="etablissement", login="0750655E",
                               establishment="Collège", first_name="Jean", last_name="Moulin",
                               email="jean@example.fr")  # fmt: skip
    with web.services.engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, pending)
    activation = link_in(outbox(web)[-1])
    before, counted = state_of(web), web.services.usage.pending()

    anonymous = client_for(web)
    stolen = client_for(web).cookies["kb_csrf"]  # another browser's token: the wrong one
    empty_file = [("fichiers", ("", b"", "application/octet-stream"))]
    password = "un tout nouveau mot de passe"
    forms = (
        (
            school,
            "/tickets",
            {"jeton": "j", "categorie": "abonnement", "sujet": "S", "message": "M"},
        ),
        (school, f"/tickets/{reference}/reponses", {"message": "M"}),
        (school, f"/tickets/{reference}/statut", {"statut": "resolu"}),
        (support, f"/support/tickets/{reference}/reponses", {"message": "M"}),
        (support, f"/support/tickets/{reference}/statut", {"statut": "resolu"}),
        (school, "/articles/a/vote", {"utile": "oui"}),
        (anonymous, activation, {"mot_de_passe": password, "confirmation": password}),
    )
    check = Refusals()
    for client, path, data in forms:
        files = empty_file if path.endswith(("/tickets", "/reponses")) else None
        for token in (None, "", stolen):
            sent = data if token is None else {**data, "csrf": token}
            check.expect(
                f"POST {path} csrf={token!r}", client.post(path, data=sent, files=files), 403
            )
    tus = {"Tus-Resumable": "1.0.0"}
    for token in (None, "", stolen):
        headers = tus if token is None else {**tus, "X-CSRF-Token": token}
        check.expect(
            f"POST /api/uploads X-CSRF-Token={token!r}",
            school.post("/api/uploads", headers={**headers, "Upload-Length": "1"}),
            403,
        )
        check.expect(
            f"PATCH upload X-CSRF-Token={token!r}",
            school.patch(
                f"/api/uploads/{upload_id}", content=b"abc",
                headers={**headers, "Upload-Offset": "0",
                         "Content-Type": "application/offset+octet-stream"},
            ),
            403,
        )  # fmt: skip
        check.expect(
            f"DELETE upload X-CSRF-Token={token!r}",
            school.delete(f"/api/uploads/{upload_id}", headers=headers),
            403,
        )
    assert not check.failures, "\n".join(check.failures)
    assert state_of(web) == before and web.services.usage.pending() == counted
    assert not accounts.by_login(web.services.engine, "0750655E").activated  # type: ignore[union-attr]
