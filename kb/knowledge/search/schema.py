"""The Whoosh schema: ranked French fields, a spelling field, and what pages need, stored."""

from __future__ import annotations

from whoosh.fields import ID, STORED, TEXT, Schema

from kb.knowledge.search.analysis import french_analyzer, spelling_analyzer

# Bump when the schema or the analysis changes: the next build is a full one.
SCHEMA_VERSION = "7"

# Field weights for BM25F: what a title says counts more than what the body mentions.
RANKED_FIELDS: tuple[tuple[str, float], ...] = (
    ("title", 5.0),
    ("keywords", 3.0),
    ("summary", 2.0),
    ("headings", 1.8),
    ("body", 1.0),
)


def make_schema() -> Schema:
    french = french_analyzer()
    return Schema(
        # Columns as well (sortable): a new generation's documents are known by slug and
        # category without unpickling each one's stored fields (see Snapshot).
        slug=ID(stored=True, unique=True, sortable=True),
        category=ID(stored=True, sortable=True),
        draft=ID(),
        # No positions: ranking reads term frequencies only, and snippets find their words in
        # the text itself. Positions were a third of the postings to sort and write.
        title=TEXT(analyzer=french, stored=True, phrase=False),
        keywords=TEXT(analyzer=french, phrase=False),
        summary=TEXT(analyzer=french, phrase=False),
        headings=TEXT(analyzer=french, phrase=False),
        body=TEXT(analyzer=french, phrase=False),
        # Whole folded words for suggestions and prefixes: a stemmed field with spelling=True
        # returns nothing for fuzzy terms.
        spell=TEXT(analyzer=spelling_analyzer(), spelling=True, phrase=False),
        html=STORED(),
        text=STORED(),
        meta=STORED(),
    )
