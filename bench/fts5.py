"""SQLite FTS5 baseline over a kb content directory: the search kb has to beat.

A reasonable, not a strawman, FTS5 setup: one row per article with the columns title,
keywords and body (Markdown stripped), the ``unicode61 remove_diacritics 2`` tokenizer (case
and accents folded; apostrophes split words), prefix indexes, and ranking by
``bm25(fts, 10.0, 5.0, 1.0)``. Free text becomes an OR of quoted terms, the last one a prefix
(``"mot" OR "de" OR "pass"*``), as a search-as-you-type box would send it; FTS5 syntax and
punctuation in the user's text are neutralised by the quoting.

    python -m bench.fts5                    # MRR@10 on tests/relevance/demarches.yml
    python -m bench.fts5 --content DIR --queries FILE
    python -m bench.fts5 --content DIR "mot de passe oublié"
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_WORD_RE = re.compile(r"\w+", re.UNICODE)


def _parse(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8").lstrip("\ufeff").lstrip()
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return {}, text
    meta = yaml.safe_load(match.group(1)) or {}
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def _row(path: Path) -> tuple[str, str, str, str] | None:
    """(slug, title, keywords, body text) of an article file; None for a draft."""
    meta, body = _parse(path)
    if meta.get("draft") is True:
        return None
    keywords = meta.get("keywords") or []
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    return (
        str(meta.get("slug") or path.stem),
        str(meta.get("title", "")),
        " ; ".join(str(k).strip() for k in keywords),
        markdown_to_text(body),
    )


def markdown_to_text(markdown: str) -> str:
    """Rough plain text of a Markdown body: keeps words (code included), drops the syntax."""
    text = re.sub(r"^[ \t]*(```|~~~).*$", " ", markdown, flags=re.M)  # fence lines
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)  # images -> alt text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links -> text
    text = re.sub(r"<[^>\n]+>", " ", text)  # HTML tags, autolinks
    text = re.sub(r"^[ \t]*#{1,6}[ \t]*", "", text, flags=re.M)  # headings
    text = re.sub(r"^[ \t]*(?:>[ \t]*)+", "", text, flags=re.M)  # blockquotes
    text = re.sub(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+", "", text, flags=re.M)  # list markers
    text = re.sub(r"^[ \t]*\|?[ \t:|-]+\|[ \t:|-]*$", " ", text, flags=re.M)  # table rules
    text = re.sub(r"[*_`|~]+", " ", text)  # emphasis, code, table pipes
    return re.sub(r"\s+", " ", text).strip()


def fts_query(text: str) -> str:
    """Free text -> safe FTS5 query: quoted words OR-ed, the last word as a prefix."""
    words = _WORD_RE.findall(text)
    if not words:
        return ""
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"  # search as you type: the last word may be incomplete
    return " OR ".join(quoted)


class Fts5Index:
    """An FTS5 table of the articles of a kb content directory."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def build(cls, content_dir: Path, db_path: Path | None = None) -> Fts5Index:
        """Index ``content_dir/<category>/*.md`` (drafts skipped) into ``db_path`` (or memory)."""
        if db_path is not None:
            db_path = Path(db_path)
            db_path.unlink(missing_ok=True)
        conn = sqlite3.connect(":memory:" if db_path is None else str(db_path))
        conn.executescript(
            """
            CREATE TABLE article (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE);
            CREATE VIRTUAL TABLE fts USING fts5(
                title, keywords, body,
                tokenize = 'unicode61 remove_diacritics 2',
                prefix = '2 3'
            );
            """
        )
        # Folders starting with "_" are not categories (canned replies, say): kb skips them too.
        articles = [p for p in sorted(Path(content_dir).glob("*/*.md"))
                    if not p.parent.name.startswith("_")]  # fmt: skip
        rows = [row for path in articles if (row := _row(path))]
        with conn:
            for rowid, (slug, title, keywords, body) in enumerate(rows, 1):
                conn.execute("INSERT INTO article (id, slug) VALUES (?, ?)", (rowid, slug))
                conn.execute(
                    "INSERT INTO fts (rowid, title, keywords, body) VALUES (?, ?, ?, ?)",
                    (rowid, title, keywords, body),
                )
            conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        return cls(conn)

    def reindex(self, path: Path) -> None:
        """Index one edited article file again (what an incremental build does)."""
        row = _row(path)
        if row is None:
            return
        slug, title, keywords, body = row
        conn = self.conn
        with conn:
            found = conn.execute("SELECT id FROM article WHERE slug = ?", (slug,)).fetchone()
            if found is None:
                rowid = conn.execute("INSERT INTO article (slug) VALUES (?)", (slug,)).lastrowid
            else:
                rowid = found[0]
                conn.execute("DELETE FROM fts WHERE rowid = ?", (rowid,))
            conn.execute(
                "INSERT INTO fts (rowid, title, keywords, body) VALUES (?, ?, ?, ?)",
                (rowid, title, keywords, body),
            )

    @classmethod
    def open(cls, db_path: Path) -> Fts5Index:
        return cls(sqlite3.connect(str(db_path)))

    def search(self, query: str, limit: int = 10) -> list[str]:
        """Slugs of the best matches for free text ``query``, best first."""
        match = fts_query(query)
        if not match or limit <= 0:
            return []
        rows = self.conn.execute(
            "SELECT article.slug FROM fts JOIN article ON article.id = fts.rowid "
            "WHERE fts MATCH ? ORDER BY bm25(fts, 10.0, 5.0, 1.0) LIMIT ?",
            (match, limit),
        ).fetchall()
        return [slug for (slug,) in rows]

    def page(self, query: str, limit: int = 10) -> list[tuple[str, str, str]]:
        """What a results page shows: (slug, highlighted title, snippet) of the best matches."""
        match = fts_query(query)
        if not match or limit <= 0:
            return []
        rows = self.conn.execute(
            "SELECT article.slug, highlight(fts, 0, '<mark>', '</mark>'), "
            "snippet(fts, 2, '<mark>', '</mark>', '…', 24) "
            "FROM fts JOIN article ON article.id = fts.rowid "
            "WHERE fts MATCH ? ORDER BY bm25(fts, 10.0, 5.0, 1.0) LIMIT ?",
            (match, limit),
        ).fetchall()
        return [(slug, title, snippet) for slug, title, snippet in rows]

    def size_bytes(self) -> int:
        """Size of the database (pages in use times page size; the file size on disk)."""
        page_count = self.conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int(page_count * page_size)

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- quick evaluation


def evaluate(index: Fts5Index, queries: list[dict[str, Any]], k: int = 10) -> dict[str, Any]:
    """MRR@k overall and per kind; ``misses`` lists queries whose first hit is beyond k."""
    per_kind: dict[str, list[float]] = defaultdict(list)
    misses = []
    for q in queries:
        results = index.search(q["query"], limit=k)
        relevant = set(q["relevant"])
        rank = next((i for i, slug in enumerate(results, 1) if slug in relevant), None)
        per_kind[q.get("kind", "?")].append(1.0 / rank if rank else 0.0)
        if rank is None:
            misses.append((q["query"], q.get("kind"), results[:3]))
    scores = [s for values in per_kind.values() for s in values]
    return {
        "mrr": sum(scores) / len(scores) if scores else 0.0,
        "kinds": {kind: sum(v) / len(v) for kind, v in sorted(per_kind.items())},
        "counts": {kind: len(v) for kind, v in sorted(per_kind.items())},
        "misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(
        prog="python -m bench.fts5",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("query", nargs="?", help="search this text instead of evaluating")
    parser.add_argument("--content", type=Path, help="content dir (default: import demarches)")
    parser.add_argument(
        "--queries", type=Path, default=root / "tests" / "relevance" / "demarches.yml"
    )
    parser.add_argument("--misses", action="store_true", help="list queries not found in top 10")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        content = args.content
        if content is None:
            from bench.corpora import DEMARCHES_SRC, import_demarches

            content = Path(tmp) / "content"
            import_demarches(DEMARCHES_SRC, content)
        start = time.perf_counter()
        index = Fts5Index.build(content, Path(tmp) / "fts5.sqlite3")
        built = time.perf_counter() - start
        if args.query is not None:
            for slug in index.search(args.query):
                print(slug)
            return 0
        queries = yaml.safe_load(args.queries.read_text(encoding="utf-8"))
        start = time.perf_counter()
        result = evaluate(index, queries)
        per_query = (time.perf_counter() - start) / max(len(queries), 1)
        print(
            f"FTS5 baseline: build {built * 1000:.0f} ms, {index.size_bytes() / 1024:.0f} KiB, "
            f"{per_query * 1000:.2f} ms/query"
        )
        print(f"MRR@10 = {result['mrr']:.3f} over {len(queries)} queries")
        for kind, score in result["kinds"].items():
            print(f"  {kind:<11} {score:.3f}  ({result['counts'][kind]} queries)")
        if args.misses:
            for query, kind, top in result["misses"]:
                print(f"  miss [{kind}] {query!r} -> {top}")
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
