"""French search: folding, stemming, stop words, synonyms, typos, prefixes, weights, snippets."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
from conftest import Site, article
from whoosh.fields import Schema

from kb.errors import BadRequest
from kb.knowledge.search import indexer, scoring, segments
from kb.knowledge.search.schema import RANKED_FIELDS, make_schema
from kb.knowledge.search.scoring import K1, B, ScoreCache
from kb.knowledge.search.searcher import Kept, Snapshot

FILES = {
    "compte-utilisateur/securite.md": article(
        "Sécurité du compte", "Choisissez un mot de passe long. Les données restent privées."
    ),
    "compte-utilisateur/mot-de-passe-oublie.md": article(
        "J'ai oublié mon mot de passe",
        "Sur la page de connexion, cliquez sur Mot de passe oublié ?",
        keywords="[réinitialiser]",
    ),
    "compte-utilisateur/changer-adresse.md": article(
        "Changer l’adresse e-mail du compte", "Ouvrez l'espace personnel et modifiez l'adresse."
    ),
    "compte-utilisateur/se-connecter.md": article(
        "Se connecter avec le code UAI",
        "Saisissez le code UAI de l'établissement comme identifiant.",
    ),
    "abonnement/renouveler.md": article(
        "Renouveler l'abonnement", "Le renouvellement se prépare avant l'échéance.", order=1
    ),
    "abonnement/abonnements-multiples.md": article(
        "Plusieurs abonnements", "Chaque établissement a son propre abonnement.", order=2
    ),
    "abonnement/supprimer.md": article(
        "Les données supprimées", "Un fichier supprimé ne revient pas. Pensez à exporter."
    ),
    "utilisation/importer.md": article(
        "Importer des fichiers",
        "## Formats acceptés\n\nLe tableur doit être enregistré en CSV.\n\n"
        "## Erreurs\n\nUne ligne incomplète est signalée. Le proxy peut bloquer l'envoi.",
    ),
    "utilisation/navigateurs.md": article(
        "Navigateurs recommandés",
        "Utilisez Chrome ou Firefox à jour. Le tableur n'est pas concerné.",
        keywords="[chrome, firefox]",
    ),
    "utilisation/tableur.md": article("Préparer un tableur", "Une colonne par information."),
}


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site(FILES)


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("privees", "securite"),  # no accent in the query
        ("securite", "securite"),
        ("SÉCURITÉ", "securite"),
        ("sécurite", "securite"),
    ],
)
def test_case_and_accents_fold_both_ways(site: Site, query: str, slug: str) -> None:
    assert site.slugs(query)[0] == slug


def test_accented_query_finds_unaccented_text(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("Securite", "Texte sans accents : echeance")})
    assert site.slugs("sécurité") == ["a"]
    assert site.slugs("échéance") == ["a"]


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("abonnements", "abonnements-multiples"),
        ("renouvellement", "renouveler"),
        ("renouveler", "renouveler"),
        ("supprimer", "supprimer"),
        ("importation", "importer"),
    ],
)
def test_french_stemming(site: Site, query: str, slug: str) -> None:
    assert slug in site.slugs(query)[:2]


def test_both_apostrophes_are_alike(site: Site) -> None:
    assert site.slugs("l'adresse")[0] == "changer-adresse"
    assert site.slugs("l’adresse")[0] == "changer-adresse"
    assert site.slugs("d’abonnement")[0] in {"renouveler", "abonnements-multiples"}


def test_question_words_and_pronouns_do_not_rank(site: Site) -> None:
    assert site.slugs("comment je fais pour renouveler mon abonnement ?")[0] == "renouveler"
    assert site.slugs("pourquoi")[:1] == []
    assert site.slugs("les") == site.slugs("cette") == []  # not in Snowball's list


def test_builtin_synonyms_and_abbreviations(site: Site) -> None:
    assert site.slugs("mdp oublié")[0] == "mot-de-passe-oublie"
    assert site.slugs("changer mon courriel")[0] == "changer-adresse"
    assert site.slugs("adresse électronique")[0] == "changer-adresse"
    assert site.slugs("login")[0] == "se-connecter"


def test_editors_synonyms_extend_the_builtin_list(make_site: Callable[..., Site]) -> None:
    files = {**FILES, "synonymes.yml": "- [uai, rne, code établissement]\n"}
    site = make_site(files)
    assert site.slugs("rne")[0] == "se-connecter"
    assert site.slugs("code etablissement")[0] == "se-connecter"


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("abonement", "abonnements-multiples"),
        ("mot de pase", "securite"),
        ("navigaturs", "navigateurs"),
        ("navigtuers", "navigateurs"),  # two edits in a long word: a letter gone, two swapped
    ],
)
def test_typos_on_longer_words(site: Site, query: str, slug: str) -> None:
    assert slug in site.slugs(query)[:3]


def test_short_words_are_not_fuzzy(make_site: Callable[..., Site]) -> None:
    site = make_site(
        {"abonnement/a.md": article("Le CSV", "csv"), "abonnement/b.md": article("X", "cvs")}
    )
    assert site.slugs("csv") == ["a"]


def test_last_word_is_a_prefix_only_as_you_type(site: Site) -> None:
    assert site.slugs("navig", prefix=True)[0] == "navigateurs"
    assert site.slugs("renouvellem", prefix=True)[0] == "renouveler"
    assert site.slugs("nav") == []
    assert site.slugs("nav", prefix=True)[0] == "navigateurs"
    # The word is complete once a space follows it.
    assert site.slugs("navig ", prefix=True) == site.slugs("navig ")


def test_title_outweighs_keywords_outweighs_headings_outweighs_body(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(
        {
            "abonnement/body.md": article("Alpha", "Le mot tableur est ici."),
            "abonnement/headings.md": article("Beta", "## Le tableur\n\nTexte."),
            "abonnement/keywords.md": article("Gamma", "Texte.", keywords="[tableur]"),
            "abonnement/title.md": article("Le tableur", "Texte."),
        }
    )
    assert site.slugs("tableur") == ["title", "keywords", "headings", "body"]


def test_snippets_mark_the_matched_words(site: Site) -> None:
    hit = site.snapshot().search("incomplète csv").hits[0]
    assert hit.slug == "importer"
    assert "<mark>incomplète</mark>" in hit.snippet and "<mark>CSV</mark>" in hit.snippet
    assert hit.snippet.endswith("…") or "bloquer" in hit.snippet


def test_snippets_read_the_same_once_an_article_is_indexed(
    make_site: Callable[..., Site],
) -> None:
    """An article is scanned for the words the first times it is shown, then indexed: a
    reader sees the same snippets and titles either way."""
    queries = ["incomplète csv", "erreurs proxy", "formats", "ligne bloquer", "importer csv"]
    fresh = make_site(FILES).snapshot()
    first = [[(h.title, h.snippet) for h in fresh.search(q).hits] for q in queries]
    warmed = make_site(FILES).snapshot()
    for i in range(5):  # the same articles shown again and again, by other queries
        warmed.search(f"importer tableur {'envoi ' * i}")
        warmed.search(f"navigateurs chrome {'firefox ' * i}")
    again = [[(h.title, h.snippet) for h in warmed.search(q).hits] for q in queries]
    assert again == first
    assert any("<mark>" in snippet for hits in again for _, snippet in hits)


def test_an_article_shows_the_words_of_each_query_that_finds_it(site: Site) -> None:
    """Once an article is indexed, what its hits show is kept by the words found in it:
    each query shows its own words, in the title as in the snippet, whatever other queries
    found the same article before it, as a snapshot that never showed anything does."""
    warmed = site.snapshot()
    for word in ("importer", "tableur", "proxy", "incomplète", "formats"):
        warmed.search(word)  # the article "importer" shown five times: indexed
    # "fichiers" is in its title only; "csv" in its text only.
    queries = ["csv", "csv fichiers", "importer csv", "csv", "fichiers", "csv tableur"]
    for query in queries:
        got = [(h.slug, h.title_html, h.snippet) for h in warmed.search(query).hits]
        fresh = [(h.slug, h.title_html, h.snippet) for h in site.snapshot().search(query).hits]
        assert got == fresh, query
    first = {q: warmed.search(q).hits[0] for q in ("csv", "csv fichiers", "fichiers")}
    assert first["csv"].slug == "importer" and "<mark>" not in first["csv"].title_html
    assert "<mark>fichiers</mark>" in first["csv fichiers"].title_html
    assert "<mark>CSV</mark>" in first["csv fichiers"].snippet
    assert "<mark>CSV</mark>" not in first["fichiers"].snippet


def test_a_snapshot_that_forgets_which_words_it_holds_answers_the_same(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which stems are indexed is kept per snapshot, within a bound: past it the snapshot
    starts again, and every answer (corrections, completions, ranking) stays the same."""
    queries = ["navigatuers", "tableur", "navigatuers recommandés", "abonnement établissement",
               "xyzzy", "importer csv", "tabl", "navigateurs", "csv fichiers"]  # fmt: skip

    def answer(snapshot: Snapshot, query: str, prefix: bool) -> tuple[object, ...]:
        got = snapshot.search(query, prefix=prefix)
        return got.total, got.rows, got.suggestion

    expected = {(q, p): answer(site.snapshot(), q, p) for q in queries for p in (False, True)}
    misspelt = site.snapshot().search("navigatuers")
    assert misspelt.hits and misspelt.suggestion == "navigateurs"  # found by its correction
    assert "navigateur" in misspelt.hits[0].title.lower()
    monkeypatch.setattr(scoring, "CACHED_INDEXED", 3)
    forgetful = site.snapshot()
    for query, prefix in [*expected, *reversed(expected)]:
        assert answer(forgetful, query, prefix) == expected[query, prefix], query
    assert len(forgetful._scores._indexed) <= 3


def test_equal_scores_come_in_slug_order_on_every_page(
    make_site: Callable[..., Site],
) -> None:
    """Articles that answer alike are listed by slug, page after page (a stable order), after
    the one that answers better, however many there are."""
    slugs = [f"s{n:02d}" for n in (7, 3, 29, 0, 15, 22, 11, 4, 18, 26, 1, 9, 13, 24, 2, 20, 6,
                                    28, 16, 10, 5, 27, 14, 19, 8, 25, 12, 21, 17, 23)]  # fmt: skip
    files = {  # the files' order (the documents' numbers) is not the slugs'
        f"abonnement/{i:02d}.md": article("Question", "Une facture.", slug=slug)
        for i, slug in enumerate(slugs)
    }
    files["abonnement/zz.md"] = article("Question", "Une facture, une facture.")
    snapshot = make_site(files).snapshot()
    for per_page in (4, 7, 50):
        shown = []
        for page in range(1, 40):
            hits = snapshot.search("facture", page=page, per_page=per_page).hits
            if not hits:
                break
            shown += [h.slug for h in hits]
        assert shown == ["zz", *sorted(slugs)], per_page


def test_snippets_are_escaped(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A", "Le <script>alert(1)</script> facture")})
    snippet = site.snapshot().search("facture").hits[0].snippet
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet


def test_category_facets_and_filter(site: Site) -> None:
    results = site.snapshot().search("tableur")
    assert results.facets == {"utilisation": 3}
    everything = site.snapshot().search("abonnement établissement")
    assert set(everything.facets) == {"compte-utilisateur", "abonnement"}
    filtered = site.snapshot().search("abonnement établissement", category="compte-utilisateur")
    assert [h.category for h in filtered.hits] == ["compte-utilisateur"]
    assert filtered.facets == everything.facets  # counts stay those of the whole query


def test_did_you_mean_when_few_articles_match(site: Site) -> None:
    results = site.snapshot().search("navigatuers recommandés")
    assert results.suggestion == "navigateurs recommandés"
    assert site.snapshot().search("navigateurs").suggestion is None


def test_queries_planned_alike_share_results_not_their_words(site: Site) -> None:
    snapshot = site.snapshot()
    plain, typed = snapshot.search("tableur"), snapshot.search("Le  tableur")
    assert typed.hits == plain.hits and typed.total == plain.total == 3
    assert json.loads(typed.json_bytes)["query"] == "Le  tableur"
    # The suggestion is made of each query's own words.
    first = snapshot.search("navigatuers recommandés")
    again = snapshot.search("les navigatuers recommandés")
    assert first.suggestion == "navigateurs recommandés"
    assert again.suggestion == "les navigateurs recommandés"
    for results in (plain, typed, first, again, snapshot.search("le"), snapshot.search("zzzz")):
        assert json.loads(results.json_bytes) == results.as_json()


def test_an_answer_is_kept_from_the_second_time_it_is_asked_for(site: Site) -> None:
    """A query that comes once is answered and forgotten (most of them come once); from its
    second time on, its answer is kept: the same bytes, answered without searching again."""
    snapshot = site.snapshot()
    first, second, third = (snapshot.search("tableur") for _ in range(3))
    assert first is not second and second is third
    assert first.json_bytes == second.json_bytes and first.hits == third.hits
    once = snapshot.suggest("navigat")
    assert snapshot.suggest("navigat") == once == snapshot.suggest("navigat")


def test_kept_answers_and_the_keys_noted_stay_bounded() -> None:
    kept: Kept[int, str] = Kept(size=2)
    for key in range(100):
        kept.keep(key, "once")
        assert kept.get(key) is None  # noted, not kept
        kept.keep(key, "twice")
    assert [kept.get(k) for k in (97, 98, 99)] == [None, "twice", "twice"]
    assert len(kept._noted) <= 8  # four times what is kept, then emptied


def test_equal_scores_have_a_stable_order(make_site: Callable[..., Site]) -> None:
    files = {f"abonnement/{name}.md": article("Même titre", "même texte") for name in "dcba"}
    site = make_site(files)
    assert site.slugs("titre") == ["a", "b", "c", "d"]


def test_scores_are_bm25_of_every_posting_over_segments_and_deletions(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The score tables, read a block of postings at a time, are each document's BM25 over
    the ranked fields: across blocks, segments, and deleted documents."""
    monkeypatch.setattr(segments, "POSTINGS_BLOCK", 64)  # terms of several blocks
    files = {
        f"abonnement/t{n:03}.md": article(
            f"Tableur {n}" if n % 7 == 0 else f"Fiche {n}",
            "Le tableur exporte. " * (1 + n % 3) + ("Une facture. " if n % 2 else ""),
        )
        for n in range(300)
    }
    site = make_site(files)
    site.write({"abonnement/t005.md": article("Tableur revu", "Une facture, un tableur.")})
    site.write({"utilisation/neuf.md": article("Facture neuve", "Le tableur de la facture.")})
    assert site.build().changed == 2
    reader = site.snapshot()._reader
    assert len(reader.leaf_readers()) > 1 and reader.has_deletions()  # what this test is for
    count = reader.doc_count_all()
    scores = ScoreCache(reader)
    for stem in ("tableur", "factur", "export", "fich", "revu"):
        expected = [0.0] * count
        for name, weight in RANKED_FIELDS:
            frequency = reader.doc_frequency(name, stem)
            if not frequency:
                continue
            idf = math.log(count / (frequency + 1)) + 1
            average = reader.field_length(name) / count
            postings = reader.postings(name, stem)  # without the deleted documents
            while postings.is_active():
                docnum, tf = postings.id(), postings.weight()
                length = reader.doc_field_length(docnum, name)
                norm = K1 * (1 - B + B * length / average)
                expected[docnum] += weight * idf * tf * (K1 + 1) / (tf + norm)
                postings.next()
        assert scores.stem(stem).tolist() == pytest.approx(expected, rel=1e-12), stem
        assert sum(1 for s in expected if s) > (2 * 64 if stem == "tableur" else 0)


def test_pagination(make_site: Callable[..., Site]) -> None:
    files = {f"abonnement/a{n:02}.md": article(f"Facture {n}", "facture") for n in range(25)}
    snapshot = make_site(files).snapshot()
    first = snapshot.search("facture", per_page=10)
    third = snapshot.search("facture", per_page=10, page=3)
    assert (first.total, first.pages, len(third.hits)) == (25, 3, 5)
    assert not {h.slug for h in first.hits} & {h.slug for h in third.hits}


def test_drafts_are_not_found(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("Facture", draft="true")})
    assert site.slugs("facture") == []
    assert site.snapshot().article("a") is None
    assert site.slugs("facture", drafts=True) == ["a"]


@pytest.mark.parametrize(
    "query", ["", "   ", "?!…", "''", '"', "*", 'title:(x AND "y" OR z~2)^3 -[a TO b]', "🙂"]
)
def test_odd_queries_get_an_answer_not_an_exception(site: Site, query: str) -> None:
    results = site.snapshot().search(query)
    assert results.hits == [] or all(h.slug for h in results.hits)


def test_empty_query_is_said_empty(site: Site) -> None:
    assert site.snapshot().search("  ?! ").empty_query
    assert not site.snapshot().search("xylophone").empty_query


def test_query_syntax_characters_are_plain_text(site: Site) -> None:
    assert site.slugs('proxy AND "csv" OR (incomplète)')[0] == "importer"


def test_long_query_gets_a_clear_message(site: Site) -> None:
    with pytest.raises(BadRequest, match="trop longue : 500 caractères au plus"):
        site.snapshot().search("abonnement " * 200)
    assert site.snapshot().search(("abonnement " * 45).strip()).hits  # 494 characters is fine


def test_bad_parameters_are_refused_clearly(site: Site) -> None:
    with pytest.raises(BadRequest, match="Catégorie inconnue"):
        site.snapshot().search("x", category="nulle-part")
    with pytest.raises(BadRequest, match="Page à partir de 1"):
        site.snapshot().search("x", page=0)


def test_suggest_gives_titles_as_typed(site: Site) -> None:
    titles = [s["title"] for s in site.snapshot().suggest("navi")]
    assert titles[0] == "Navigateurs recommandés"
    assert len(site.snapshot().suggest("e", limit=8)) <= 8


def test_suggestions_are_the_first_results_of_the_search_as_typed(site: Site) -> None:
    typed = ["n", "na", "navi", "mot de p", "Mot de passe", "facturation ann", "zzz", "le "]
    for limit in (1, 3, 8):
        alone = site.snapshot()  # a fresh snapshot: suggestions ranked without any page
        suggested = {q: alone.suggest(q, limit=limit) for q in typed}
        pages = site.snapshot()
        for query in typed:
            hits = pages.search(query, prefix=True, per_page=limit).hits
            expected = [
                {"slug": h.slug, "title": h.title, "url": h.url, "category": h.category}
                for h in hits
            ]
            assert suggested[query] == expected, query
            assert pages.suggest(query, limit=limit) == expected  # now from the page kept
    with pytest.raises(BadRequest, match="de 1 à 50"):
        site.snapshot().suggest("x", limit=51)


def test_articles_in_category_follow_editors_order(site: Site) -> None:
    slugs = [a["slug"] for a in site.snapshot().articles_in("abonnement")]
    assert slugs == ["renouveler", "abonnements-multiples", "supprimer"]


def test_similar_articles(make_site: Callable[..., Site]) -> None:
    site = make_site(
        {
            "abonnement/a.md": article("Facture annuelle", "La facture annuelle du contrat."),
            "abonnement/b.md": article("Devis", "Le devis précède la facture annuelle."),
            "abonnement/c.md": article("Navigateur", "Chrome ou Firefox."),
        }
    )
    assert site.snapshot().similar("a") == ["b"]


def test_fixed_expressions_are_one_word(make_site: Callable[..., Site]) -> None:
    site = make_site(
        {
            "abonnement/delai.md": article("Dépôt", "Le dépôt est possible jusqu'au dernier jour."),
            "utilisation/maj.md": article("Navigateur", "Faites la mise à jour : restez à jour."),
        }
    )
    assert site.slugs("le dernier jour") == ["delai"]  # not "à jour", not "mise à jour"
    assert site.slugs("mise à jour du navigateur")[0] == "maj"
    assert site.slugs("mettre a jour")[0] == "maj"


def _facets_and_drafts(site: Site) -> tuple[dict[str, int], list[str], list[str], list[str]]:
    snapshot = site.snapshot()
    results = snapshot.search("facture", per_page=50)
    in_abonnement = snapshot.search("facture", category="abonnement", per_page=50)
    with_drafts = snapshot.search("facture", per_page=50, drafts=True)
    return (
        results.facets,
        sorted(h.slug for h in results.hits),
        sorted(h.slug for h in in_abonnement.hits),
        sorted(h.slug for h in with_drafts.hits),
    )


def test_categories_and_drafts_follow_edits_moves_and_deletions(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(
        {
            "abonnement/a.md": article("Facture annuelle"),
            "abonnement/b.md": article("Facture mensuelle", draft="true"),
            "utilisation/c.md": article("Imprimer une facture"),
            "utilisation/d.md": article("Exporter une facture"),
        }
    )
    assert _facets_and_drafts(site) == (
        {"abonnement": 1, "utilisation": 2}, ["a", "c", "d"], ["a"], ["a", "b", "c", "d"]
    )  # fmt: skip
    # Each build after an edit deletes documents and adds others in a new segment.
    (site.content / "utilisation/d.md").rename(site.content / "abonnement/d.md")
    site.write({"abonnement/b.md": article("Facture mensuelle")})  # published
    site.write({"utilisation/c.md": article("Imprimer une facture", draft="true")})
    site.build()
    (site.content / "abonnement/a.md").unlink()
    site.build()
    assert _facets_and_drafts(site) == (
        {"abonnement": 2}, ["b", "d"], ["b", "d"], ["b", "c", "d"]
    )  # fmt: skip


def test_a_generation_written_before_the_columns_is_still_served(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index of schema 6 (slug and category without columns), as a replica still on the
    previous release left it: the documents' categories and drafts are read as then."""

    def without_columns() -> Schema:
        schema = make_schema()
        for name in ("slug", "category"):
            schema[name].column_type = None
        return schema

    monkeypatch.setattr(indexer, "make_schema", without_columns)
    site = make_site(
        {
            "abonnement/a.md": article("Facture annuelle"),
            "abonnement/b.md": article("Facture mensuelle", draft="true"),
            "utilisation/c.md": article("Imprimer une facture"),
        }
    )
    assert not site.snapshot()._reader.has_column("slug")
    assert _facets_and_drafts(site) == (
        {"abonnement": 1, "utilisation": 1}, ["a", "c"], ["a"], ["a", "b", "c"]
    )  # fmt: skip
