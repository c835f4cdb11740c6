"""SQLite FTS5 over a kb content directory: the search kb has to beat, a reasonable setup and
not a strawman (bench/README.md, "The FTS5 baseline", says which)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from bench.corpora import articles, read_front_matter

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_INSERT = "INSERT INTO fts (rowid, title, keywords, body) VALUES (?, ?, ?, ?)"


def _row(path: Path) -> tuple[str, str, str, str] | None:
    """(slug, title, keywords, body text) of an article file; None for a draft."""
    meta, body = read_front_matter(path)
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
            db_path.unlink(missing_ok=True)
        conn = sqlite3.connect(db_path or ":memory:")
        conn.execute("CREATE TABLE article (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE)")
        conn.execute(
            "CREATE VIRTUAL TABLE fts USING fts5(title, keywords, body, "
            "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
        )
        rows = [row for path in articles(Path(content_dir)) if (row := _row(path))]
        with conn:
            for rowid, (slug, title, keywords, body) in enumerate(rows, 1):
                conn.execute("INSERT INTO article (id, slug) VALUES (?, ?)", (rowid, slug))
                conn.execute(_INSERT, (rowid, title, keywords, body))
            conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        return cls(conn)

    def reindex(self, path: Path) -> None:
        """Index one edited article file again (what an incremental build does); the article
        is already there."""
        row = _row(path)
        if row is None:
            return
        slug, title, keywords, body = row
        with self.conn as conn:
            [(rowid,)] = conn.execute("SELECT id FROM article WHERE slug = ?", (slug,)).fetchall()
            conn.execute("DELETE FROM fts WHERE rowid = ?", (rowid,))
            conn.execute(_INSERT, (rowid, title, keywords, body))

    def page(self, query: str, limit: int = 10) -> list[tuple[str, str, str]]:
        """What a results page shows: (slug, highlighted title, snippet) of the best matches."""
        match = fts_query(query)
        if not match or limit <= 0:
            return []
        return self.conn.execute(
            "SELECT article.slug, highlight(fts, 0, '<mark>', '</mark>'), "
            "snippet(fts, 2, '<mark>', '</mark>', '…', 24) "
            "FROM fts JOIN article ON article.id = fts.rowid "
            "WHERE fts MATCH ? ORDER BY bm25(fts, 10.0, 5.0, 1.0) LIMIT ?",
            (match, limit),
        ).fetchall()

    def close(self) -> None:
        self.conn.close()
