"""Script injection: whatever people write comes back escaped, on pages, in the API and in mails."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import getaddresses

import pytest
from conftest import (
    ATTRIBUTE,
    EVERYTHING,
    IMG,
    PASSWORD,
    PAYLOADS,
    SCRIPT,
    TEMPLATE,
    Web,
    activated_account,
    agent,
    article,
    assert_escaped,
    assert_json_error,
    client_for,
    log_in,
    new_ticket,
    outbox,
    seen,
)

from kb.helpdesk import accounts, notifications

# --- script injection: everything comes back escaped -----------------------------------------


def _yaml(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


SCRIPT_URLS = (
    "[clic1](javascript:alert(1))",
    "[clic2](JaVaScRiPt:alert(1))",
    "[clic3](<javascript:alert(1)>)",
    "[clic4](&#106;avascript:alert(1))",
    "[clic5](vbscript:msgbox(1))",
    "[clic6](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    "[clic7][r]",
    "![clic8](javascript:alert(1))",
)
HOSTILE_ARTICLE = "\n".join(
    [
        "---",
        f"title: {_yaml('Facture ' + EVERYTHING)}",
        f"summary: {_yaml('Résumé ' + EVERYTHING)}",
        f"keywords: {_yaml(f'facture, {SCRIPT}, {IMG}')}",
        "---",
        f"La facture arrive. {EVERYTHING}",
        "",
        f"## Étape {SCRIPT} {IMG}",
        "",
        *SCRIPT_URLS,
        "",
        f"[titre](https://example.org '{IMG}') [autre](autre.md)",
        "",
        f"![{IMG}](x.png)",
        "",
        "<img src=x onerror=alert(1)>",
        "",
        f"| {SCRIPT} | b |\n|---|---|\n| {IMG} | {TEMPLATE} |",
        "",
        f"```{IMG}\ncode {SCRIPT}\n```",
        "",
        "[r]: javascript:alert(1)",
        "",
    ]
)
HOSTILE_FILES = {
    "abonnement/_category.yml": (
        f"title: {_yaml('Abonnement ' + IMG)}\norder: 1\n"
        f"description: {_yaml('Facturation ' + EVERYTHING)}\n"
    ),
    "abonnement/facture.md": HOSTILE_ARTICLE,
    "abonnement/autre.md": article("Autre facture", "Voir la facture."),
}


@pytest.fixture
def hostile_web(make_web: Callable[..., Web]) -> Web:
    return make_web(HOSTILE_FILES)


def test_article_fields_come_back_escaped_on_every_page(hostile_web: Web) -> None:
    client = hostile_web.client
    title, summary = "Facture " + EVERYTHING, "Résumé " + EVERYTHING
    assert_escaped(client.get("/").text, "Abonnement " + IMG)
    assert_escaped(
        client.get("/categories/abonnement").text,
        "Abonnement " + IMG, "Facturation " + EVERYTHING, title, summary,
    )  # fmt: skip
    page = client.get("/articles/facture").text
    assert_escaped(page, title, summary, f"Étape {SCRIPT} {IMG}", f"code {SCRIPT}", TEMPLATE)
    found = client.get("/recherche", params={"q": "facture"}).text
    assert_escaped(found, "Abonnement " + IMG)
    assert SCRIPT in seen(found).text  # the title, highlighted, still as text


def test_javascript_links_in_articles_are_not_links(hostile_web: Web) -> None:
    page = seen(hostile_web.client.get("/articles/facture").text)
    assert page.injected == []
    # markdown-it refuses these destinations: the Markdown stays as text.
    for source in ("[clic1](javascript:alert(1))", "[clic5](vbscript:msgbox(1))", "[clic7][r]"):
        assert source in page.text, source
    html = hostile_web.client.get("/api/articles/facture").json()["html"]
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html).lower()
    assert 'href="https://example.org" title="&quot;&gt;&lt;img' in html
    assert 'href="/articles/autre"' in html  # an ordinary link still works


def test_api_answers_are_json_with_html_escaped_where_documented(hostile_web: Web) -> None:
    client = hostile_web.client
    found = client.get("/api/search", params={"q": "facture"})
    assert found.headers["content-type"] == "application/json"
    assert found.headers["x-content-type-options"] == "nosniff"
    hit = next(h for h in found.json()["results"] if h["slug"] == "facture")
    assert hit["title"] == "Facture " + EVERYTHING  # plain text, for textContent
    assert_escaped(hit["snippet"])
    body = client.get("/api/articles/facture").json()
    assert_escaped(body["html"], f"Étape {SCRIPT} {IMG}")
    assert body["headings"][0]["text"] == f"Étape {SCRIPT} {IMG}"
    suggested = client.get("/api/suggest", params={"q": "factu"})
    assert suggested.headers["content-type"] == "application/json"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_reflected_parameters_come_back_escaped(hostile_web: Web, payload: str) -> None:
    client = hostile_web.client
    assert_escaped(client.get("/recherche", params={"q": payload}).text, payload)
    unknown = client.get("/recherche", params={"q": "facture", "categorie": payload})
    assert unknown.status_code == 400
    assert_escaped(unknown.text, f"Catégorie inconnue : « {payload} »")
    api = client.get("/api/search", params={"q": "facture", "category": payload})
    assert_json_error(api, 400)
    assert api.headers["content-type"] == "application/json"
    assert_escaped(client.get(f"/articles/{payload}").text)
    assert_escaped(client.get("/connexion", params={"suivant": "/" + payload}).text)
    token = hostile_web.csrf()
    login = client.post(
        "/connexion", data={"csrf": token, "identifiant": payload, "mot_de_passe": "x"}
    )
    assert login.status_code == 400
    assert_escaped(login.text, payload.strip())
    forgot = client.post("/mot-de-passe-oublie", data={"csrf": token, "identifiant": payload})
    assert forgot.status_code == 400
    assert_escaped(forgot.text, payload.strip())


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def recipients(message: EmailMessage) -> list[str]:
    return [email for _, email in getaddresses(message.get_all("To", []))]


HOSTILE_NAMES = {
    "establishment": "Lycée " + IMG,
    "first_name": "Marie " + SCRIPT,
    "last_name": "Curie " + TEMPLATE + " " + ATTRIBUTE,
}


def test_tickets_names_and_mails_come_back_escaped(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    engine = web.services.engine
    school, _ = accounts.save(engine, role="etablissement", login="0750654D",
                              email="marie@example.fr", **HOSTILE_NAMES)  # fmt: skip
    accounts.set_password(engine, school, PASSWORD)
    with engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, school)
    assert_escaped(html_of(outbox(web)[-1]), school.name, "Lycée " + IMG)
    agent(web)

    establishment = client_for(web, "0750654D")
    assert_escaped(establishment.get("/").text, school.name)
    subject = "Sujet " + IMG + " " + TEMPLATE
    message = (
        f"{EVERYTHING}\nhttps://example.org/{IMG}\njavascript:alert(1)\n"
        '/articles/x"onmouseover="alert(1)'
    )
    files = [
        ("fichiers", (f"{IMG}.png", b"png", "image/png")),
        ("fichiers", (f"{SCRIPT}.txt", b"txt", "text/plain")),
        ("fichiers", ("javascript:alert(1).txt", b"js", "text/plain")),
    ]
    reference = new_ticket(establishment, subject, message, files)
    assert_escaped(establishment.get("/tickets").text, subject)
    thread = establishment.get(f"/tickets/{reference}").text
    assert_escaped(thread, subject, SCRIPT, "javascript:alert(1)")
    assert 'href="javascript:' not in thread
    links = re.findall(rf"/tickets/{reference}/pieces-jointes/(\d+)", thread)
    assert len(links) == 3
    for attachment_id in links:
        download = establishment.get(f"/tickets/{reference}/pieces-jointes/{attachment_id}")
        assert download.status_code == 200
        disposition = download.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="') and "<" not in disposition

    to_support = outbox(web)[-1]
    assert recipients(to_support) == [web.settings.support_email]
    assert to_support["Subject"].strip() == f"[{reference}] {subject}"
    assert_escaped(html_of(to_support), subject, school.name, "Lycée " + IMG)

    support = client_for(web, "sam@cpro.fr")
    assert_escaped(support.get("/support").text, subject, "Lycée " + IMG)
    queue = support.get("/support", params={"q": IMG, "categorie": SCRIPT, "statut": ATTRIBUTE})
    assert queue.status_code == 200
    assert_escaped(queue.text, IMG)
    not_an_id = support.get("/support", params={"etablissement": IMG})
    assert not_an_id.status_code == 400
    assert_escaped(not_an_id.text)
    console = support.get(f"/support/tickets/{reference}", params={"article": IMG}).text
    assert_escaped(console, subject, school.name, "Lycée " + IMG, IMG)
    reply = support.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": support.cookies["kb_csrf"], "message": "Réponse " + EVERYTHING},
        files=[("fichiers", ("", b"", "application/octet-stream"))],
    )
    assert reply.status_code == 303
    assert_escaped(html_of(outbox(web)[-1]), subject, school.name)
    assert_escaped(establishment.get(f"/tickets/{reference}").text, "Réponse " + EVERYTHING)
    report = support.get("/rapport", params={"depuis": SCRIPT})
    assert report.status_code == 400
    assert_escaped(report.text, SCRIPT)


def test_a_refused_ticket_form_gives_back_what_was_typed_escaped(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({})
    activated_account(web)
    log_in(web)
    refused = web.client.post(
        "/tickets",
        data={"csrf": web.client.cookies["kb_csrf"], "jeton": IMG, "categorie": SCRIPT,
              "sujet": "Sujet " + IMG, "message": "Message " + EVERYTHING},
        files=[("fichiers", ("", b"", "application/octet-stream"))],
    )  # fmt: skip
    assert refused.status_code == 400
    assert_escaped(refused.text, "Sujet " + IMG, "Message " + EVERYTHING, IMG)
    form = web.client.get("/tickets/nouveau", params={"categorie": IMG})
    assert_escaped(form.text)


@pytest.mark.parametrize(
    "first_name",
    [
        "Marie " + SCRIPT,
        "Marie <evil@example.org>",
        "Marie-Hélène, dite « Lena » <evil@example.org> de la Tour d'Auvergne",
        'Marie "Lena" Dupont-Lajoie de Saint-Exupéry, documentaliste (CDI) ' + ATTRIBUTE,
    ],
)
def test_an_account_name_cannot_change_who_gets_its_mail(
    make_web: Callable[..., Web], first_name: str
) -> None:
    web = make_web({})
    engine = web.services.engine
    school, _ = accounts.save(engine, role="etablissement", login="0750654D",
                              establishment="Lycée", first_name=first_name, last_name="Curie",
                              email="marie@example.fr")  # fmt: skip
    with engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, school)
    [mail] = outbox(web)  # as written to the outbox, or sent through SMTP: the same bytes
    assert recipients(mail) == ["marie@example.fr"], mail["To"]


def test_a_line_break_in_an_account_name_cannot_add_mail_headers(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({})
    engine = web.services.engine
    try:
        school, _ = accounts.save(
            engine, role="etablissement", login="0750654D", email="marie@example.fr",
            establishment="Lycée\r\nBcc: evil@example.org", first_name="Marie\nBcc: evil@example.org",
            last_name="Curie\r\n\r\n<script>alert(1)</script>",
        )  # fmt: skip
    except accounts.AccountError:
        return  # refused with a message: fine too
    client = client_for(web)
    forgot = client.post(
        "/mot-de-passe-oublie",
        data={"csrf": client.cookies["kb_csrf"], "identifiant": school.login},
    )
    assert forgot.status_code == 200
    [mail] = outbox(web)
    assert recipients(mail) == ["marie@example.fr"] and mail["Bcc"] is None
    assert_escaped(html_of(mail))


def test_a_forged_host_header_does_not_go_into_mailed_links(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    activated_account(web)
    token = web.csrf()
    web.client.post(
        "/mot-de-passe-oublie",
        data={"csrf": token, "identifiant": "0750654D"},
        headers={"host": "evil.example"},
    )
    [mail] = outbox(web)
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "evil.example" not in body and "evil.example" not in html_of(mail)
