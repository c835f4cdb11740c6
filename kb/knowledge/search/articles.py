"""The articles of one generation as readers browse them: a page, a category's list, the
articles like one."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from whoosh.searching import Searcher

from kb.knowledge.search.analysis import fold


@dataclass(frozen=True)
class IndexedArticlePage:
    """An article as the index stored it: what its page shows."""

    slug: str
    title: str
    category: str
    html: str
    text: str
    summary: str
    headings: list[tuple[int, str, str]]
    updated: str | None
    related: list[str]
    aliases: list[str]
    draft: bool
    url: str


class Articles:
    """Pages, listings and similar articles, read from a generation's stored fields and its
    build's listing; `lock` is the snapshot's, shared with its searches."""

    def __init__(
        self,
        searcher: Searcher,
        listing: list[dict[str, Any]],
        drafts: set[int],
        lock: threading.Lock,
    ) -> None:
        self._searcher = searcher
        self._reader = searcher.reader()
        self.listing = listing
        self._by_slug = {a["slug"]: a for a in listing}
        self._drafts = drafts
        self._lock = lock
        self._similar: dict[str, list[str]] = {}

    def article(self, slug: str, drafts: bool = False) -> IndexedArticlePage | None:
        with self._lock:
            docnum = self._searcher.document_number(slug=slug)
            if docnum is None or (docnum in self._drafts and not drafts):
                return None
            stored = self._reader.stored_fields(docnum)
        meta = stored["meta"]
        return IndexedArticlePage(
            slug=stored["slug"],
            title=stored["title"],
            category=stored["category"],
            html=stored["html"],
            text=stored["text"],
            summary=meta.get("summary", ""),
            headings=[tuple(h) for h in meta.get("headings", [])],
            updated=meta.get("updated"),
            related=meta.get("related", []),
            aliases=meta.get("aliases", []),
            draft=bool(meta.get("draft")),
            url=f"/articles/{stored['slug']}",
        )

    def listing_of(self, slug: str) -> dict[str, Any] | None:
        return self._by_slug.get(slug)

    def articles_in(self, category: str, drafts: bool = False) -> list[dict[str, Any]]:
        """A category's articles in the editors' order, then by title."""
        return sorted(
            (a for a in self.listing if a["category"] == category and (drafts or not a["draft"])),
            key=lambda a: (a["order"] if a["order"] is not None else 10_000, fold(a["title"])),
        )

    def similar(self, slug: str, limit: int = 5) -> list[str]:
        """Articles that share the most distinctive words with this one."""
        if slug not in self._similar:
            with self._lock:
                docnum = self._searcher.document_number(slug=slug)
                found: list[str] = []
                if docnum is not None:
                    stored = self._reader.stored_fields(docnum)
                    text = " ".join((stored["title"], stored["title"], stored["text"]))
                    hits = self._searcher.more_like(
                        docnum, "body", text=text, top=limit + 5, numterms=12
                    )
                    found = [h["slug"] for h in hits if h.docnum not in self._drafts][:limit]
            self._similar[slug] = found
        return self._similar[slug]
