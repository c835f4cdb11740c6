"""Stray bytes, numbers that are not numbers, impossible dates: a clear 4xx, never a 500."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable

from conftest import (
    Refusals,
    Web,
    activated_account,
    agent,
    client_for,
    new_ticket,
)

# --- stray NUL bytes and control characters, on SQLite and PostgreSQL ---------------------------


def test_nul_bytes_anywhere_never_give_a_500(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    agent(web)
    school = client_for(web, "0750654D")
    support = client_for(web, "sam@cpro.fr")
    reference = new_ticket(school)
    token = school.cookies["kb_csrf"]
    nul = "a\x00b"
    check = Refusals()
    empty_file = [("fichiers", ("", b"", "application/octet-stream"))]
    ticket = {"csrf": token, "jeton": uuid.uuid4().hex, "categorie": "abonnement", "sujet": "S",
              "message": "M"}  # fmt: skip
    for name in ("sujet", "message", "jeton", "categorie"):
        data = {**ticket, "jeton": uuid.uuid4().hex, name: nul}
        check.below_500(
            f"POST /tickets {name}=NUL", school.post("/tickets", data=data, files=empty_file)
        )
    check.below_500(
        "POST /tickets/{ref}/reponses message=NUL",
        school.post(f"/tickets/{reference}/reponses", data={"csrf": token, "message": nul},
                    files=empty_file),
    )  # fmt: skip
    encoded = "a%00b"  # in a path, as a browser or curl sends it
    for path in (f"/tickets/{encoded}", f"/tickets/{reference}%00",
                 f"/tickets/{encoded}/pieces-jointes/1", f"/articles/{encoded}",
                 f"/categories/{encoded}", f"/activation/{encoded}",
                 f"/confirmation-email/{encoded}", f"/api/articles/{encoded}"):  # fmt: skip
        check.below_500(f"GET {path}", school.get(path))
    check.below_500(
        f"POST /tickets/{encoded}/statut",
        school.post(f"/tickets/{encoded}/statut", data={"csrf": token, "statut": "resolu"}),
    )
    for params in ({"q": nul}, {"categorie": nul}, {"statut": nul}, {"etablissement": nul}):
        check.below_500(f"GET /support {params!r}", support.get("/support", params=params))
    check.below_500(f"GET /support/tickets/{encoded}", support.get(f"/support/tickets/{encoded}"))
    check.below_500(
        "GET /support/tickets/{ref}?article=NUL",
        support.get(f"/support/tickets/{reference}", params={"article": nul}),
    )
    check.below_500(
        "POST /support/tickets/{ref}/reponses message=NUL",
        support.post(f"/support/tickets/{reference}/reponses",
                     data={"csrf": support.cookies["kb_csrf"], "message": nul}, files=empty_file),
    )  # fmt: skip
    check.below_500("GET /rapport?depuis=NUL", support.get("/rapport", params={"depuis": nul}))
    for path, data in (
        ("/connexion", {"csrf": token, "identifiant": "0750654D\x00", "mot_de_passe": nul}),
        ("/connexion", {"csrf": token, "identifiant": "a\x00@example.fr", "mot_de_passe": nul}),
        ("/mot-de-passe-oublie", {"csrf": token, "identifiant": "0750654D\x00"}),
        ("/espace-personnel/email", {"csrf": token, "email": "a\x00@example.fr"}),
    ):
        check.below_500(f"POST {path} {data!r}", school.post(path, data=data))
    tus = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": token}
    for method in ("HEAD", "PATCH", "DELETE"):
        response = school.request(method, f"/api/uploads/{encoded}", headers=tus)
        check.below_500(f"{method} /api/uploads/{encoded}", response)
    for key in ("filename", "filetype"):
        metadata = f"{key} " + base64.b64encode(nul.encode()).decode()
        created = school.post(
            "/api/uploads", headers={**tus, "Upload-Length": "1", "Upload-Metadata": metadata}
        )
        check.below_500(f"POST /api/uploads metadata {key}=NUL", created)
    for query in (nul, "\x00", "facture\x00"):
        check.below_500(
            f"GET /recherche?q={query!r}", school.get("/recherche", params={"q": query})
        )
    web.app.state.usage.flush()  # searches with NUL bytes are counted without harm
    assert not check.failures, "\n".join(check.failures)
