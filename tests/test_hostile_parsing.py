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
    tus_upload,
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
    web.services.usage.flush()  # searches with NUL bytes are counted without harm
    assert not check.failures, "\n".join(check.failures)


def test_a_nul_in_the_address_is_refused_in_french_before_any_route(
    make_web: Callable[..., Web],
) -> None:
    client = make_web({}).client
    for url in ("/recherche?q=a%00b", "/recherche?q=facture%00", "/recherche?%00=x",
                "/articles/a%00b"):  # fmt: skip
        page = client.get(url)
        assert page.status_code == 400, url
        assert "Caractère nul interdit dans l'adresse." in page.text, url
        assert page.headers["x-content-type-options"] == "nosniff"
    answer = client.get("/api/search?q=a%00b")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "requete_invalide"
    # "%00" written out (%25 is "%"), and a NUL's look-alikes, are searched for as typed.
    for query in ("%2500", "a%2500b", "%0", "%0g", "100%"):
        found = client.get("/api/search", params={"q": query})
        assert found.status_code == 200, query
        assert found.json()["query"] == query


# --- numbers that are not numbers, ids too large for any row, dates that cannot be --------------

NOT_NUMBERS = ("²", "٣", "１", "1²", "+1", "-1", "1.0", "1e3", " 1", "0x10", "9" * 20, "9" * 5000)


def test_numbers_ids_and_dates_are_parsed_strictly_everywhere(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    agent(web)
    school = client_for(web, "0750654D")
    support = client_for(web, "sam@cpro.fr")
    reference = new_ticket(school)
    upload = tus_upload(school, b"abc", complete=False)
    tus = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": school.cookies["kb_csrf"]}
    check = Refusals()
    for raw in NOT_NUMBERS:
        check.expect(
            f"POST /api/uploads Upload-Length={raw!r}",
            school.post("/api/uploads", headers={**tus, "Upload-Length": raw.encode()}), 400,
        )  # fmt: skip
        check.expect(
            f"PATCH Upload-Offset={raw!r}",
            school.patch(
                f"/api/uploads/{upload}", content=b"abc",
                headers={**tus, "Upload-Offset": raw.encode(),
                         "Content-Type": "application/offset+octet-stream"},
            ),
            400,
        )  # fmt: skip
        check.expect(
            f"GET /support?etablissement={raw!r}",
            support.get("/support", params={"etablissement": raw}), 400,
        )  # fmt: skip
        for path in ("/recherche", "/tickets", "/support", "/api/search"):
            params = {"page": raw, "q": "facture"}
            check.expect(f"GET {path}?page={raw!r}", (support if "support" in path else school).get(path, params=params), 400)  # fmt: skip
        check.expect(
            f"GET attachment {raw!r}",
            school.get(f"/tickets/{reference}/pieces-jointes/{raw}"), 404,
        )  # fmt: skip
    for huge in ("9" * 20, "2147483648", "99999999999"):
        check.expect(
            f"GET /support?etablissement={huge}",
            support.get("/support", params={"etablissement": huge}), 400,
        )  # fmt: skip
        check.expect(f"GET attachment {huge}", school.get(f"/tickets/{reference}/pieces-jointes/{huge}"), 404)  # fmt: skip
    for day in ("0001-01-01", "9999-12-31", "2026-02-30", "2026-1-1", "20260101", "2026-W01-1",
                "２０２６-01-01", "1999-12-31", "2101-01-01"):  # fmt: skip
        for name in ("depuis", "jusqu_au"):
            response = support.get("/rapport", params={name: day})
            check.expect(f"GET /rapport?{name}={day}", response, 400)
            said = "AAAA-MM-JJ" in response.text or "entre 2000 et 2100" in response.text
            if response.status_code == 400 and not said:
                check.failures.append(f"GET /rapport?{name}={day}: no French explanation")
    assert not check.failures, "\n".join(check.failures)
    # Well-formed values still work.
    assert support.get("/support", params={"etablissement": "1", "page": "1"}).status_code == 200
    assert support.get("/rapport", params={"depuis": "2026-01-01"}).status_code == 200
