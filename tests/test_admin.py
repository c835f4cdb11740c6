"""Administration on the web: the same rules as `kb accounts`, every action audited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from conftest import (
    PASSWORD,
    SUPPORT_FILES,
    Page,
    Web,
    help_desk,
    log_in,
    outbox,
    page,
)

from kb import tables
from kb.helpdesk import accounts


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = help_desk(make_web(SUPPORT_FILES, database_url=database_url))
    admin, _ = accounts.save(web.services.engine, role="admin", login="ada@cpro.fr",
                             establishment="", first_name="Ada", last_name="Admin",
                             email="ada@cpro.fr")  # fmt: skip
    accounts.set_password(web.services.engine, admin, PASSWORD)
    return web


def as_admin(web: Web) -> str:
    web.client.cookies.clear()
    assert log_in(web, "ada@cpro.fr").status_code == 303
    return web.client.cookies["kb_csrf"]


def audited(web: Web) -> list[tuple[str, str]]:
    with web.services.engine.connect() as connection:
        rows = connection.execute(
            sa.select(tables.audit.c.event, tables.audit.c.detail)
            .where(tables.audit.c.event.like("admin_%"), tables.audit.c.login == "ada@cpro.fr")
            .order_by(tables.audit.c.id)
        ).all()
    return [(r.event, r.detail) for r in rows]


def test_only_administrators_reach_the_administration(web: Web) -> None:
    assert web.client.get("/admin").headers["location"] == "/connexion?suivant=/admin"
    for login in ("0750654D", "sam@cpro.fr"):
        web.client.cookies.clear()
        log_in(web, login)
        refused = web.client.get("/admin")
        assert refused.status_code == 403
        assert "réservée aux administrateurs" in Page(refused).text
        assert "Administration" not in [words for _, words in page(web, "/").links]
    as_admin(web)
    assert page(web, "/").link("Administration") == "/admin"
    assert web.client.get("/support").status_code == 200  # an administrator is an agent too


def test_create_search_invite_disable_import_all_audited(web: Web) -> None:
    token = as_admin(web)
    created = web.client.post("/admin/comptes", data={
        "csrf": token, "role": "etablissement", "uai": "0130001f", "etablissement": "Lycée Thiers",
        "prenom": "Paul", "nom": "Valéry", "email": "paul@example.fr"})  # fmt: skip
    assert "Compte 0130001F créé ; e-mail d'activation envoyé." in Page(created).text
    assert outbox(web)[-1]["To"] == "Paul Valéry <paul@example.fr>"
    bad = web.client.post("/admin/comptes", data={
        "csrf": token, "role": "etablissement", "uai": "0130001A", "etablissement": "X",
        "prenom": "A", "nom": "B", "email": "a@example.fr"})  # fmt: skip
    assert bad.status_code == 400 and "UAI" in Page(bad).text
    agent_made = web.client.post("/admin/comptes", data={
        "csrf": token, "role": "agent", "uai": "", "etablissement": "", "prenom": "Léa",
        "nom": "Ligne", "email": "Lea@CPRO.fr"})  # fmt: skip
    assert "Compte lea@cpro.fr créé" in Page(agent_made).text

    found = page(web, "/admin", q="thiers").text
    assert "0130001F" in found and "Lycée Thiers" in found and "0750654D" not in found
    assert "1 compte." in found and "À activer" in found
    paul = accounts.by_login(web.services.engine, "0130001F")
    assert paul is not None
    invited = web.client.post(f"/admin/comptes/{paul.id}/invitation", data={"csrf": token})
    assert invited.headers["location"] == "/admin?invite=1"
    marie = accounts.by_login(web.services.engine, "0750654D")
    assert marie is not None
    again = web.client.post(f"/admin/comptes/{marie.id}/invitation", data={"csrf": token})
    assert again.status_code == 400 and "déjà activé" in Page(again).text
    web.client.post(f"/admin/comptes/{marie.id}/desactiver", data={"csrf": token})
    assert accounts.by_login(web.services.engine, "0750654D").disabled  # type: ignore[union-attr]
    me = accounts.by_login(web.services.engine, "ada@cpro.fr")
    own = web.client.post(f"/admin/comptes/{me.id}/desactiver", data={"csrf": token})  # type: ignore[union-attr]
    assert own.status_code == 400 and "votre propre compte" in Page(own).text
    assert web.client.post("/admin/comptes/999999/desactiver",
                           data={"csrf": token}).status_code == 400  # fmt: skip

    csv = ("uai;etablissement;prenom;nom;email\n0130002G;Lycée Mistral;Frédéric;Mistral;"
           "fm@example.fr\n12;Faux;A;B;c@example.fr\n").encode("cp1252")  # fmt: skip
    imported = web.client.post("/admin/import", data={"csrf": token},
                               files={"fichier": ("rentree.csv", csv, "text/csv")})  # fmt: skip
    text = Page(imported).text
    assert imported.status_code == 400  # a bad row: said, and the others imported
    assert "1 compte(s) créé(s)" in text and "rentree.csv:3: « 12 » n'est pas un code UAI" in text
    assert accounts.by_login(web.services.engine, "0130002G") is not None

    events = [event for event, _detail in audited(web)]
    assert events == ["admin_account_saved", "admin_account_saved", "admin_invitation_sent",
                      "admin_account_disabled", "admin_import"]  # fmt: skip
    journal = page(web, "/admin").text
    assert "Dernières actions des administrateurs" in journal and "Import CSV" in journal
    assert web.client.post("/admin/comptes", data={"csrf": "x", "role": "agent"}).status_code == 403


def admin_page(web: Web, url: str, **post: object) -> Page:
    return Page(web.client.post(url, headers={"accept-encoding": "identity"}, **post))  # type: ignore[arg-type]


def invalid_fields(page: Page) -> dict[str, str]:
    """Each field marked invalid, and the id of the message that describes it."""
    return {
        f["id"]: f["aria-describedby"].split()[0]
        for tag in ("input", "select")
        for f in page.having(tag, aria_invalid="true")
    }


def test_the_account_form_says_every_problem_at_its_field(web: Web) -> None:
    token = as_admin(web)
    empty = admin_page(web, "/admin/comptes", data={"csrf": token, "role": "etablissement"})
    assert empty.status == 400 and empty.template == "admin.html"
    assert set(empty.context["errors"]) == {"c-uai", "c-etab", "c-prenom", "c-nom", "c-email"}
    assert invalid_fields(empty) == {f: f"{f}-erreur" for f in empty.context["errors"]}
    assert "Le compte n'est pas encore enregistré" in empty.text
    for message in empty.context["errors"].values():
        assert f"Erreur : {message}" in empty.text
    # An agent needs no UAI nor establishment; a wrong address is said as such.
    agent_form = {"csrf": token, "role": "agent", "prenom": "Léa", "nom": "", "email": "lea@"}
    wrong = admin_page(web, "/admin/comptes", data=agent_form)
    assert wrong.context["errors"] == {
        "c-nom": "Le nom du contact est obligatoire.",
        "c-email": "« lea@ » n'est pas une adresse e-mail valide.",
    }
    assert wrong.having("input", id="c-prenom")[0]["value"] == "Léa"  # kept
    assert accounts.by_login(web.services.engine, "lea@") is None


def test_a_refused_import_is_said_at_the_file_field(web: Web) -> None:
    token = as_admin(web)
    missing = admin_page(web, "/admin/import", data={"csrf": token},
                         files={"fichier": ("", b"", "text/csv")})  # fmt: skip
    assert missing.status == 400
    assert missing.context["import_errors"] == {
        "i-fichier": "Choisissez le fichier CSV des établissements à importer."
    }
    assert invalid_fields(missing) == {"i-fichier": "i-fichier-erreur"}
    bad = admin_page(web, "/admin/import", data={"csrf": token},
                     files={"fichier": ("photo.csv", b"\x89PNG\r\n", "text/csv")})  # fmt: skip
    assert bad.status == 400
    assert bad.context["import_errors"]["i-fichier"].startswith("1 ligne du fichier « photo.csv »")
    (field,) = bad.having("input", id="i-fichier")
    assert field["aria-describedby"].split() == ["i-fichier-erreur", "i-fichier-detail"]
    assert "photo.csv:1:" in bad.text  # the report's lines, under the field
