"""Any query and any content: ranked results, a clear 400, or path:line problems; never a
traceback. Property-based (hypothesis); the OpenAPI contract is fuzzed in test_schemathesis.py.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    IMG,
    SCRIPT,
    TEMPLATE,
    Run,
    Web,
    article,
    assert_escaped,
    assert_json_error,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- any query: results or a clear 400 -------------------------------------------------------

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


# --- any front matter and Markdown: path:line problems or a build ----------------------------

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
