"""Hostile input: whatever people or robots send, kb answers escaped, in French, never with a 500.

Property-based tests (hypothesis) for queries and content; then injection, traversal, oversized
requests, stray NUL bytes and other establishments' ids, route by route. The OpenAPI contract is
fuzzed in test_schemathesis.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
from conftest import PASSWORD, Run, Web, activated_account, article, link_in, log_in, outbox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from test_uploads import serving

from kb import db
from kb.helpdesk import accounts, notifications
from kb.knowledge.content import ARTICLE_KEYS

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written in the work tree; a failure prints its example
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one site per test, shared by its examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ATTRIBUTE = "' onmouseover='alert(1)' \" onmouseover=\"alert(1)"
TEMPLATE = "{{7*7}} {% raw %}"
PAYLOADS = (SCRIPT, IMG, ATTRIBUTE, TEMPLATE)
EVERYTHING = " ".join(PAYLOADS)


# --- what a browser would make of a page --------------------------------------------------------

_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}


class _Browser(HTMLParser):
    """Collects what would run (elements, handlers, script URLs) and the text a reader sees."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.injected: list[str] = []
        self.shown: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and not values.get("src"):
            self.injected.append("<script> inline")
        if tag == "img" and values.get("src") == "x":
            self.injected.append("<img src=x>")
        for name, value in values.items():
            if name.startswith("on"):
                self.injected.append(f"<{tag} {name}=…>")
            url = re.sub(r"[\x00-\x20]", "", value).lower()
            if name in _URL_ATTRIBUTES and url.startswith(("javascript:", "vbscript:")):
                self.injected.append(f"<{tag} {name}={value!r}>")
            if name == "href" and url.startswith("data:"):
                self.injected.append(f"<{tag} href={value!r}>")
            self.shown.append(value)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.shown.append(data)


@dataclass
class Seen:
    injected: list[str]
    text: str  # text nodes and attribute values, unescaped, one a line


def seen(markup: str) -> Seen:
    browser = _Browser()
    browser.feed(markup)
    browser.close()
    return Seen(browser.injected, "\n".join(browser.shown))


def assert_escaped(markup: str, *shown: str) -> None:
    """Nothing runs, and each of `shown` reaches the reader as text."""
    page = seen(markup)
    assert page.injected == [], page.injected
    assert SCRIPT not in markup and "<img src=x" not in markup
    for text in shown:
        assert text in page.text, text


def assert_json_error(response: httpx2.Response, status: int) -> None:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert set(error) >= {"status", "code", "message"} and error["status"] == status
    assert error["message"] and "Traceback" not in error["message"]


def client_for(web: Web, login: str | None = None) -> TestClient:
    """Another browser on the same help center; 500s come back as responses, not exceptions."""
    client = TestClient(web.app, follow_redirects=False, raise_server_exceptions=False)
    client.get("/")
    if login is not None:
        response = client.post(
            "/connexion",
            data={
                "csrf": client.cookies["kb_csrf"],
                "identifiant": login,
                "mot_de_passe": PASSWORD,
            },
        )
        assert response.status_code == 303, response.text[:500]
    return client


# --- 1. any query: results or a clear 400 -------------------------------------------------------

SEARCH_FILES = {
    "abonnement/renouveler.md": article(
        "Renouveler l'abonnement", "Avant l'échéance, la facture arrive.", keywords="facture"
    ),
    "compte-utilisateur/mot-de-passe.md": article(
        "J'ai oublié mon mot de passe", "## Étapes\n\nCliquez sur « Mot de passe oublié ? »."
    ),
    "utilisation/importer.md": article("Importer un fichier CSV", "Le proxy bloque l'import."),
}
QUERY_PIECES = (
    "AND", "OR", "NOT", "TO", '"', "'", "*", "?", "~", "~2", "^3", ":", "title:", "body:x", "(",
    ")", "[", "]", "{", "}", "-", "+", "\\", "/", "&&", "||", "!", "%", "%00", "\x00", "\t", "\n",
    "\r", "\u200b", "\u202e", "\ufeff", "é", "œ", "İ", "ß", "ﬁ", "🙂", "’", "mot de passe",
    "abonnement", "facture", "le", "la", SCRIPT, IMG,
)  # fmt: skip
queries = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=80),
    st.text(st.characters(codec="utf-8"), min_size=480, max_size=700),
    st.lists(st.sampled_from(QUERY_PIECES), max_size=40).map(" ".join),
    st.lists(st.sampled_from(QUERY_PIECES), max_size=40).map("".join),
)
odd_numbers = st.one_of(
    st.none(),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", " ", "1.5", "1e3", "٣", "0x10", "NaN", "-0", "+1", "1_000", "\x00"]),
)
odd_categories = st.one_of(
    st.none(), st.sampled_from(["abonnement", "ABONNEMENT", "../abonnement", SCRIPT]), st.text()
)


@pytest.fixture
def search_web(make_web: Callable[..., Web]) -> Web:
    return make_web(SEARCH_FILES)


@FUZZ
@given(query=queries, page=odd_numbers, per_page=odd_numbers, category=odd_categories)
def test_any_query_gets_results_or_a_clear_400(
    search_web: Web, query: str, page: str | None, per_page: str | None, category: str | None
) -> None:
    client = search_web.client
    params = {"q": query, "page": page, "per_page": per_page, "category": category}
    sent = {k: v for k, v in params.items() if v is not None}

    found = client.get("/api/search", params=sent)
    if found.status_code == 400:
        assert_json_error(found, 400)
    else:
        assert found.status_code == 200, found.text[:500]
        body = found.json()
        assert {"query", "total", "page", "per_page", "results", "facets"} <= set(body)
        for hit in body["results"]:
            assert_escaped(hit["snippet"])
            assert hit["url"] == f"/articles/{hit['slug']}"

    suggested = client.get("/api/suggest", params={"q": query, "limit": per_page or ""})
    if suggested.status_code == 400:
        assert_json_error(suggested, 400)
    else:
        assert suggested.status_code == 200, suggested.text[:500]
        assert isinstance(suggested.json()["suggestions"], list)

    page_params = {"q": query, "page": page, "categorie": category}
    shown = client.get("/recherche", params={k: v for k, v in page_params.items() if v is not None})
    assert shown.status_code in (200, 400), shown.text[:500]
    assert shown.headers["content-type"].startswith("text/html")
    assert_escaped(shown.text)
    if shown.status_code == 400:  # the search form with its notice, or the error page
        assert re.search(r'role="alert">[^<]+<|<h1>Requête invalide</h1>', shown.text)


@FUZZ
@given(query=queries)
def test_kb_search_never_prints_a_traceback(
    search_web: Web, cli: Callable[..., Run], query: str
) -> None:
    site = search_web.site
    run = cli("search", "--content", site.content, "--index", site.index, "--", query)
    assert run.status in (0, 2), (run.status, run.out, run.err)
    output = run.out + run.err
    assert "Traceback" not in output and "erreur inattendue" not in output, output
    if run.status == 2:
        assert run.err.startswith("kb: ") and run.out == ""


# --- 1. any front matter and Markdown: path:line problems or a build ----------------------------

PROBLEM_LINE = re.compile(r"^.+:\d+: .+$")
CHECK_SUMMARY = re.compile(
    r"^(\d+ avertissement\(s\) :|Échec : \d+ erreur\(s\)( et \d+ avertissement\(s\))? "
    r"\(\d+ articles, \d+ catégories\)\.|Contenu valide : \d+ articles, \d+ catégories\.)$"
)
BUILD_SUMMARY = re.compile(
    r"^(\d+ avertissement\(s\) :|\d+ erreur\(s\) : rien n'a été construit\.)$"
)

YAML_KEYS = (
    *ARTICLE_KEYS, "titre", "Title", "tags", "", "? x", "- x", "title title", '"title"', "'slug'",
    "<<", "&a title", "*a", "!!str title", "1", "null", "é", "title\t", "key with: colon",
)  # fmt: skip
YAML_VALUES = (
    "", "~", "null", "true", "oui", "yes", "no", "0", "-1", "4", "1e400", ".inf", ".nan",
    "2026-02-30", "2026-13-45", "2026-01-01", "2026-01-01T25:61:00", "[a, b", "{a: 1}", "[1, [2]]",
    "[a, B C, é]", '"unterminated', "'it''s'", '"a\\nb"', '"\\x00"', '"\\ud800"', "&anchor x",
    "*anchor", "*undefined", "!!python/object/apply:os.system [echo]", "!!binary aGk=", "!!int x",
    "!!float", "!!set {a}", "!!timestamp x", "!!omap [a: 1]", "|", ">-", "|\n  multi\n  line",
    "\n  - a\n  - b", "\n  - [x]\n  - {y: z}", ": x", "a: b: c", "# comment", "%YAML 1.1",
    "---", "...", "\t", "x\ty", "a,,b, ,", "mot-de-passe", "Mot De Passe", "../../etc/passwd",
    "x" * 120, SCRIPT, TEMPLATE, "🙂", "\u202e", "\x85", "\u2028",
)  # fmt: skip
MARKDOWN_BLOCKS = (
    "# Titre", "## Étapes", "###### ", "## " + SCRIPT, "### " + IMG, "#", "##\t#",
    "[lien](autre.md)", "[lien](autre.md#etapes)", "[lien](../abonnement/autre.md)",
    "[lien](absent.md)", "[lien](/absolu.md)", "[lien](.md)", "[lien](%zz.md)", "[lien](<>)",
    "[lien](" + "../" * 30 + "etc/passwd.md)", "[lien](file:///etc/passwd.md)",
    "[lien](javascript:alert(1))", "[lien](autre.md?x=1)", "[lien](C:\\\\x.md)",
    "[ref]: autre.md", "[ref]", "![image](x.png)", "![" + IMG + "](javascript:alert(1))",
    "|a|b|\n|-|-|\n|1|2|", "|a|\n|-|-|-|", "```", "```python\nprint(1)\n```", "    code",
    "> citation", "> > >", "- a\n  - b\n    - c", "1. un\n2. deux", "* * *", "<div>", "<!--",
    "&#0;", "&#xD800;", "&#x110000;", "&nbsp;", "\x00", "\x0b\x0c", "\\", "`", "*" * 50,
    "[" * 50, "a  \nb", "é" * 100, TEMPLATE,
)  # fmt: skip
A_CATEGORY = {"abonnement/_category.yml": b"title: Abonnement\norder: 1\n"}
UNSAFE_BYTES = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\r")


@st.composite
def front_matter(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            key = draw(st.sampled_from(YAML_KEYS))
            value = draw(st.one_of(st.sampled_from(YAML_VALUES), st.text(max_size=20)))
            indent = draw(st.sampled_from(["", "", "", " ", "\t", "  - "]))
            separator = draw(st.sampled_from([": ", ": ", ":", ":\t", " : ", "  "]))
            lines.append(f"{indent}{key}{separator}{value}")
        else:
            lines.append(draw(st.text(max_size=30)))
    return "\n".join(lines)


@st.composite
def article_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    header = draw(front_matter())
    if draw(st.booleans()):
        header = f"title: {draw(st.sampled_from(['Facture', SCRIPT, 'x' * 100]))}\n" + header
    body = "\n\n".join(
        draw(
            st.lists(st.one_of(st.sampled_from(MARKDOWN_BLOCKS), st.text(max_size=40)), max_size=8)
        )
    )
    opening = draw(
        st.sampled_from(["---\n", "---\n", "---\n", "--- \n", "\n\n---\n", "", "----\n"])
    )
    closing = draw(st.sampled_from(["\n---\n", "\n---\n", "\n...\n", "\n", "\n--- x\n"]))
    text = opening + header + closing + body
    if draw(st.booleans()):
        text = text.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\n\t"])))
    raw = text.encode("utf-8")
    if draw(st.booleans()):
        position = draw(st.integers(0, len(raw)))
        raw = raw[:position] + draw(st.sampled_from(UNSAFE_BYTES)) + raw[position:]
    if draw(st.integers(0, 4)) == 0:
        raw = b"\xef\xbb\xbf" + raw
    return raw


@st.composite
def content_tree(draw: st.DrawFn) -> dict[str, bytes]:
    names = ["a.md", "autre.md", "Été à jour.md", "b c.md", "UPPER.md", "x.MD", "-.md"]
    files = {
        f"abonnement/{name}": draw(article_bytes())
        for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    }
    if draw(st.integers(0, 3)) == 0:
        files["fuzz/_category.yml"] = draw(front_matter()).encode()
        files["fuzz/a.md"] = draw(article_bytes())
    if draw(st.integers(0, 3)) == 0:
        files["synonymes.yml"] = draw(
            st.one_of(
                st.sampled_from([b"- [a, b]\n- c, d\n", b"- a\n", b"{}", b"- [[a]]", b"\xff"]),
                front_matter().map(str.encode),
            )
        )
    return files


def assert_problem_lines(output: str, summary: re.Pattern[str]) -> None:
    """Every line a terminal shows is a summary or one `path:line: message`."""
    for line in output.split("\n")[:-1] if output else []:
        assert summary.match(line) or PROBLEM_LINE.match(line), f"not path:line: message: {line!r}"


@FUZZ
@given(files=content_tree())
def test_any_content_gives_path_line_problems_or_a_build(
    tmp_path: Path, cli: Callable[..., Run], files: dict[str, bytes]
) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        content, index = root / "content", root / "index"
        for name, text in {**A_CATEGORY, **files}.items():
            path = content / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text)

        checked = cli("check", "--content", content)
        assert checked.status in (0, 1), checked
        assert checked.err == "", checked.err
        assert "Traceback" not in checked.out and "erreur inattendue" not in checked.out
        assert_problem_lines(checked.out, CHECK_SUMMARY)

        built = cli("build", "--content", content, "--index", index)
        assert "Traceback" not in built.err and "erreur inattendue" not in built.err, built.err
        assert_problem_lines(built.err, BUILD_SUMMARY)
        # What kb check calls valid builds; what it refuses is not built.
        assert built.status == checked.status, (checked.out, built.err)
        if built.status == 0:
            assert built.out.startswith("Index construit : ")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- 3. script injection: everything comes back escaped -----------------------------------------


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


def agent(web: Web, email: str = "sam@cpro.fr") -> accounts.Account:
    account, _ = accounts.save(web.services.engine, role="agent", login=email, establishment="",
                               first_name="Sam", last_name="Support", email=email)  # fmt: skip
    accounts.set_password(web.services.engine, account, PASSWORD)
    return account


def new_ticket(
    client: TestClient,
    subject: str = "Facture introuvable",
    message: str = "Le bouton ne répond pas.",
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
    **fields: str,
) -> str:
    data = {"csrf": client.cookies["kb_csrf"], "jeton": uuid.uuid4().hex, "categorie": "abonnement",
            "sujet": subject, "message": message, **fields}  # fmt: skip
    response = client.post(
        "/tickets", data=data, files=files or [("fichiers", ("", b"", "application/octet-stream"))]
    )
    assert response.status_code == 303, response.text[:1000]
    return response.headers["location"].split("?")[0].rsplit("/", 1)[1]


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
    notifications.send_activation(engine, web.services.mailer, web.settings, school)
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
    queue = support.get(
        "/support",
        params={"q": IMG, "categorie": SCRIPT, "statut": ATTRIBUTE, "etablissement": IMG},
    )
    assert queue.status_code == 200
    assert_escaped(queue.text, IMG)
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
    notifications.send_activation(engine, web.services.mailer, web.settings, school)
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


# --- 4. path traversal --------------------------------------------------------------------------


def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with the target exactly as written: no client normalises `..` away."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# Each would reach a real file (kb/config.py, pyproject.toml) if a path were joined naively.
TRAVERSALS = (
    "/static/../../config.py",
    "/static/..%2F..%2Fconfig.py",
    "/static/%2e%2e/%2e%2e/config.py",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static/..%5C..%5Cconfig.py",
    "/static/kb.css/../../../config.py",
    "/static/kb.0123456789.css/../../../config.py",
    "/static/....//....//config.py",
    "/static/..%252F..%252Fconfig.py",
    "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/config.py",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/static/config.py%00.css",
    "/articles/..%2F..%2F..%2Fpyproject.toml",
    "/articles/../../etc/passwd",
    "/articles/%2e%2e",
    "/api/articles/..%2F..%2Fetc%2Fpasswd",
    "/categories/..",
    "/categories/..%2F..%2F",
    "/categories/%2e%2e",
    "/api/uploads/..%2F..",
    "/api/uploads/..",
    "/tickets/..%2F..%2Fetc%2Fpasswd",
    "/tickets/T-2026-000001/pieces-jointes/..%2F..%2Fkb.sqlite3",
    "/tickets/T-2026-000001/pieces-jointes/-1",
    "/activation/..%2F..%2Fetc%2Fpasswd",
)
SECRETS = (b"root:", b"[project]", b"Settings", b"SQLite format", b"def ")


def test_traversal_in_urls_is_refused_and_nothing_outside_is_served(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({"abonnement/a.md": article("A")})
    activated_account(web)
    with serving(web) as base:
        for target in TRAVERSALS:
            status, body = raw_get(base, target)
            assert status in (303, 400, 401, 404, 405, 412), (target, status)
            assert not any(secret in body for secret in SECRETS), target


def test_attachment_and_upload_names_cannot_reach_outside(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    activated_account(web)
    client = client_for(web, "0750654D")
    reference = new_ticket(
        client,
        files=[
            ("fichiers", ("../../../../etc/passwd", b"a", "text/plain")),
            ("fichiers", ("..\\..\\kb.sqlite3", b"b", "text/plain")),
            ("fichiers", ("/etc/shadow", b"c", "text/plain")),
            ("fichiers", ("..", b"d", "text/plain")),
        ],
    )
    with web.services.engine.connect() as connection:
        rows = connection.execute(sa.select(db.attachments)).all()
    root = (web.settings.data_dir / "attachments").resolve()
    assert sorted(r.filename for r in rows) == ["kb.sqlite3", "passwd", "piece-jointe", "shadow"]
    for row in rows:
        assert root in (root / row.stored_as).resolve().parents
        assert client.get(f"/tickets/{reference}/pieces-jointes/{row.id}").status_code == 200
    metadata = "filename " + base64.b64encode(b"../../../kb.sqlite3").decode()
    created = client.post(
        "/api/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": metadata,
                 "X-CSRF-Token": client.cookies["kb_csrf"]},
    )  # fmt: skip
    assert created.status_code == 201
    upload_id = created.headers["location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", upload_id)
    with web.services.engine.connect() as connection:
        [upload] = connection.execute(sa.select(db.uploads)).all()
    assert upload.filename == "kb.sqlite3"


# --- 5. oversized forms, fields and headers -----------------------------------------------------

MIB = 1024 * 1024


def audit_rows(web: Web) -> int:
    with web.services.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(db.audit)).scalar())


def ticket_rows(web: Web) -> int:
    with web.services.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(db.tickets)).scalar())


@pytest.fixture
def logged_web(make_web: Callable[..., Web]) -> Web:
    web = make_web({})
    activated_account(web)
    log_in(web)
    return web


def assert_refused_clearly(response: httpx2.Response) -> None:
    assert response.status_code in (400, 413, 431), (response.status_code, response.text[:300])
    assert "Traceback" not in response.text


def test_a_10_mb_login_form_is_refused(logged_web: Web) -> None:
    web = logged_web
    client = client_for(web)
    before = audit_rows(web)
    body = f"csrf={client.cookies['kb_csrf']}&identifiant=0750654D&mot_de_passe=" + "a" * 10 * MIB
    response = client.post(
        "/connexion", content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert_refused_clearly(response)
    assert "kb_session" not in client.cookies and audit_rows(web) == before


def test_thousands_of_form_fields_are_refused(logged_web: Web) -> None:
    web = logged_web
    client = client_for(web)
    fields = "&".join(f"f{i}=x" for i in range(5000))
    body = f"csrf={client.cookies['kb_csrf']}&identifiant=0750654D&mot_de_passe={PASSWORD}&{fields}"
    response = client.post(
        "/connexion", content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert_refused_clearly(response)
    assert "kb_session" not in client.cookies


def test_huge_ticket_fields_are_refused_and_nothing_is_stored(logged_web: Web) -> None:
    web = logged_web
    token = web.client.cookies["kb_csrf"]
    for field_name, size in (("sujet", 300 * 1024), ("message", 300 * 1024), ("jeton", MIB)):
        data = {
            "csrf": token,
            "jeton": "j",
            "categorie": "abonnement",
            "sujet": "S",
            "message": "M",
        }
        data[field_name] = "x" * size
        response = web.client.post(
            "/tickets", data=data, files=[("fichiers", ("", b"", "application/octet-stream"))]
        )
        assert_refused_clearly(response)
    assert ticket_rows(web) == 0
    assert not [p for p in (web.settings.data_dir / "attachments").rglob("*") if p.is_file()]


def multipart(parts: list[tuple[str, str | bytes]], boundary: str = "kbhostile") -> bytes:
    chunks = []
    for name, value in parts:
        data = value.encode() if isinstance(value, str) else value
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def test_a_ticket_form_with_hundreds_of_parts_is_refused(logged_web: Web) -> None:
    web = logged_web
    token = web.client.cookies["kb_csrf"]
    fields = [("csrf", token), ("jeton", "j"), ("categorie", "abonnement"), ("sujet", "S"),
              ("message", "M")]  # fmt: skip
    # 2,000 parts of 200 KB each would hold 400 MB in memory: a few hundred small ones show it.
    padding = [(f"champ{i}", "x" * 1024) for i in range(500)]
    response = web.client.post(
        "/tickets",
        content=multipart(fields + padding),
        headers={"content-type": "multipart/form-data; boundary=kbhostile"},
    )
    assert_refused_clearly(response)
    assert ticket_rows(web) == 0


def test_a_status_form_with_thousands_of_parts_is_refused(logged_web: Web) -> None:
    web = logged_web
    reference = new_ticket(web.client)
    padding = [(f"champ{i}", "x") for i in range(1500)]
    response = web.client.post(
        f"/tickets/{reference}/statut",
        content=multipart(
            [("csrf", web.client.cookies["kb_csrf"]), ("statut", "resolu"), *padding]
        ),
        headers={"content-type": "multipart/form-data; boundary=kbhostile"},
    )
    assert_refused_clearly(response)


def raw_request(base: str, head: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_100_kb_header_line_is_refused(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    with serving(web) as base:
        for name in (b"X-Padding", b"Cookie", b"Upload-Metadata"):
            head = (
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + name + b": " + b"a" * 100_000
                + b"\r\nConnection: close\r\n\r\n"
            )  # fmt: skip
            answer = raw_request(base, head)
            status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
            assert status in (400, 413, 431), (name, answer[:200])


# --- stray NUL bytes and control characters, on SQLite and PostgreSQL ---------------------------


@dataclass
class Refusals:
    """Responses collected route by route, so one run names every route that failed."""

    failures: list[str] = field(default_factory=list)

    def expect(self, what: str, response: httpx2.Response, *statuses: int) -> None:
        if response.status_code not in statuses:
            self.failures.append(f"{what}: {response.status_code}, expected {statuses}")

    def below_500(self, what: str, response: httpx2.Response) -> None:
        if response.status_code >= 500:
            self.failures.append(f"{what}: {response.status_code}")


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


# --- 6. another establishment's tickets, attachments and uploads --------------------------------


def attachment_ids(web: Web) -> dict[str, int]:
    with web.services.engine.connect() as connection:
        rows = connection.execute(sa.select(db.attachments.c.filename, db.attachments.c.id))
        return {name: int(id_) for name, id_ in rows}


def state_of(web: Web) -> tuple[object, ...]:
    """Everything another establishment must not be able to change."""
    with web.services.engine.connect() as connection:
        tickets = connection.execute(
            sa.select(db.tickets.c.reference, db.tickets.c.status).order_by(db.tickets.c.id)
        ).all()
        counts = [
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in (db.messages, db.attachments, db.uploads)
        ]
    files = sorted(str(p) for p in web.settings.data_dir.rglob("*") if p.is_file())
    return tuple(tickets), tuple(counts), tuple(f for f in files if "/outbox/" not in f)


def tus_upload(client: TestClient, data: bytes, complete: bool) -> str:
    tus = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": client.cookies["kb_csrf"]}
    created = client.post("/api/uploads", headers={**tus, "Upload-Length": str(len(data))})
    assert created.status_code == 201
    url = created.headers["location"]
    if complete:
        patched = client.patch(
            url, content=data,
            headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert patched.status_code == 204
    return url.rsplit("/", 1)[1]


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
    notifications.send_activation(web.services.engine, web.services.mailer, web.settings, pending)
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
