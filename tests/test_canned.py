"""Canned replies: checked by kb check, searched and filled on a ticket, counted in /rapport."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import (
    SHIPPED_CONTENT,
    SUPPORT_FILES,
    Page,
    Run,
    Site,
    Web,
    article,
    as_agent,
    help_desk,
    log_in,
    school_ticket,
)
from conftest import page as get_page

from kb.knowledge import canned, content

FILES = {
    **SUPPORT_FILES,
    "_reponses-types/mot-de-passe.md": (
        "---\ntitle: Mot de passe oublié\ncategory: compte-utilisateur\n"
        "keywords: [mdp, connexion]\n---\n"
        "Bonjour {{ prenom }},\n\nPour {{etablissement}} : {{ article:mdp-perdu }}\n"
        "Ticket {{ reference }}, réponse avant le {{ echeance }}.\n"
    ),
    "_reponses-types/renouvellement.md": (
        "---\ntitle: Renouveler\ncategory: abonnement\n---\nVoir {{ article:renouveler }}.\n"
    ),
    "_reponses-types/capture.md": (
        "---\ntitle: Demander une capture d'écran\nkeywords: capture, navigateur\n---\n"
        "Pouvez-vous envoyer une capture, {{ prenom }} ?\n"
    ),
}


def test_kb_check_reports_every_canned_reply_problem_at_its_line(
    make_site: Callable[..., Site], cli: Callable[..., Run]
) -> None:
    site = make_site(
        {
            "abonnement/a.md": article("A", summary="Un.", keywords="[a]"),
            "_reponses-types/bon.md": "---\ntitle: Bon\n---\nVoir {{ article:a }}.\n",
            "_reponses-types/cles.md": "---\ntitle: Clés\nauteur: moi\ncategory: inconnue\n---\nT\n",
            "_reponses-types/champs.md": (
                "---\ntitle: Champs\n---\nBonjour {{ nom }},\n\nvoir {{ article:absent }}\n"
            ),
            "_reponses-types/sans-titre.md": "---\nkeywords: [x]\n---\nTexte\n",
            "_reponses-types/vide.md": "---\ntitle: Vide\n---\n\n",
            "_reponses-types/yaml.md": "---\ntitle: [non fermé\n---\nT\n",
            "_reponses-types/balise.md": "---\ntitle: !!int x\n---\nT\n",
            "_reponses-types/doublon.md": "---\ntitle: Doublon\nslug: bon\n---\nT\n",
            "_reponses-types/notes.txt": "brouillon",
        },
        built=False,
    )
    result = cli("check", "--content", site.content)
    assert result.status == 1
    out = result.out
    folder = "_reponses-types"
    assert f"{folder}/cles.md:3: clé inconnue « auteur » : title, category, keywords, slug" in out
    assert f"{folder}/cles.md:4: catégorie inconnue « inconnue » : abonnement" in out
    assert f"{folder}/champs.md:4: champ inconnu {{{{ nom }}}} : {{{{ etablissement }}}}" in out
    assert f"{folder}/champs.md:6: article inconnu « absent » dans {{{{ article:absent }}}}" in out
    assert f"{folder}/sans-titre.md:1: « title » est obligatoire" in out
    assert f"{folder}/vide.md:3: réponse type vide" in out
    assert f"{folder}/yaml.md:2: en-tête YAML invalide : vérifiez les crochets" in out
    assert f"{folder}/balise.md:2: en-tête YAML invalide : « x » ne peut pas être lu comme" in out
    assert f"{folder}/doublon.md:1: réponse type « bon » déjà définie par bon.md" in out
    assert f"{folder}/notes.txt:1: seuls des fichiers .md vont dans ce dossier" in out
    assert f"{folder}/bon.md:" not in out
    assert "Traceback" not in out + result.err
    assert "10 erreur(s)" in out, out


def test_a_canned_reply_header_with_a_control_character_is_a_problem_at_its_line(
    make_site: Callable[..., Site], cli: Callable[..., Run]
) -> None:
    site = make_site(
        {"_reponses-types/cloche.md": "---\ntitle: Bonjour\nkeywords: [a\x07b]\n---\nT\n"},
        built=False,
    )
    result = cli("check", "--content", site.content)
    assert result.status == 1
    assert "_reponses-types/cloche.md:3: YAML invalide : caractère interdit U+0007" in result.out
    assert "Traceback" not in result.out + result.err
    assert "erreur inattendue" not in result.out + result.err


def test_a_canned_reply_with_a_key_written_twice_is_refused_at_the_second_line(
    make_site: Callable[..., Site], cli: Callable[..., Run]
) -> None:
    site = make_site(
        {"_reponses-types/double.md": "---\ntitle: Bonjour\nslug: a\ntitle: Au revoir\n---\nT\n"},
        built=False,
    )
    result = cli("check", "--content", site.content)
    assert result.status == 1
    assert "_reponses-types/double.md:4: clé « title » en double (ligne 2)" in result.out
    replies, problems = canned.load(site.content, set(), set())
    assert not replies  # neither title: the editor says which
    assert [(p.line, p.message) for p in problems] == [(4, "clé « title » en double (ligne 2)")]


def test_the_shipped_canned_replies_are_valid(cli: Callable[..., Run]) -> None:
    result = cli("check", "--content", SHIPPED_CONTENT)
    assert result.status == 0, result.out
    shipped = content.load(SHIPPED_CONTENT)
    slugs = {a.slug for a in shipped.articles}
    replies, problems = canned.load(SHIPPED_CONTENT, slugs, {c.slug for c in shipped.categories})
    assert problems == [] and len(replies) >= 4


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    return help_desk(make_web(FILES, database_url=database_url))


def offered(shown: Page) -> list[str]:
    """The canned replies the page offers to insert, by title, in its order."""
    insert = "Insérer « "
    return [words[len(insert) : -2] for _, words in shown.links if words.startswith(insert)]


def test_canned_replies_are_offered_filled_searched_and_counted(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)  # category compte-utilisateur
    as_agent(web)
    shown = get_page(web, f"/support/tickets/{reference}")
    # This ticket's category first, then the others by title.
    assert offered(shown) == ["Mot de passe oublié", "Demander une capture d'écran", "Renouveler"]
    first = next(a for a in shown.having("a") if "data-canned-insert" in a)  # what a click inserts
    text = first["data-canned-insert"]
    assert text == shown.context["canned"].items[0].text
    assert text.startswith("Bonjour Marie,\n\nPour Lycée Louis-le-Grand : ")
    assert "J'ai oublié mon mot de passe : http://testserver/articles/mot-de-passe-oublie" in text
    assert f"Ticket {reference}, réponse avant le " in text and "{{" not in text

    url = f"/support/tickets/{reference}"
    searched = get_page(web, url, reponse_type="navigateur")
    assert offered(searched) == ["Demander une capture d'écran"]  # keywords count, accents aside
    assert offered(get_page(web, url, reponse_type="ECRAN")) == ["Demander une capture d'écran"]
    assert offered(get_page(web, url, reponse_type="echeance")) == []
    none = get_page(web, f"/support/tickets/{reference}", reponse_type="zzz")
    refused = "Aucune réponse type ne contient « zzz » : essayez un autre mot."
    assert none.context["search_errors"] == {"reponse-type": refused}
    assert f"Erreur : {refused}" in none.text  # said at the field, which is marked invalid
    (field,) = none.having("input", id="reponse-type")
    assert field["aria-invalid"] == "true"
    assert field["aria-describedby"].split() == ["reponse-type-erreur", "reponse-type-aide"]

    # Without JavaScript: the link fills the message and says which canned reply it is.
    chosen = get_page(web, url, modele="capture")
    assert chosen.field(id="message")["value"] == "Pouvez-vous envoyer une capture, Marie ?"
    assert chosen.field(name="reponse_type_utilisee", value="capture")
    sent = web.client.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": web.client.cookies["kb_csrf"], "message": "Pouvez-vous… ?",
              "reponse_type_utilisee": ["capture", "inconnue"]},
        files=[("fichiers", ("", b"", "x"))],
    )  # fmt: skip
    assert sent.status_code == 303
    report = get_page(web, "/rapport")
    assert "Réponses types utilisées" in report.text
    uses = {slug: (title, count) for slug, title, count in report.context["canned_uses"]}
    assert uses["capture"] == ("Demander une capture d'écran", 1)
    assert "inconnue" not in uses and "inconnue" not in report.text  # no such canned reply
    assert "Demander une capture d'écran" in report.text


def test_a_broken_canned_reply_is_left_out_and_an_edit_shows_at_once(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    as_agent(web)
    folder = web.site.content / canned.FOLDER
    (folder / "casse.md").write_text("---\ntitle: Cassé\n---\nBonjour {{ nom }}\n", "utf-8")
    shown = offered(get_page(web, f"/support/tickets/{reference}"))
    assert "Cassé" not in shown and len(shown) == 3
    (folder / "casse.md").write_text("---\ntitle: Réparé\n---\nBonjour {{ prenom }}\n", "utf-8")
    assert "Réparé" in offered(get_page(web, f"/support/tickets/{reference}"))
