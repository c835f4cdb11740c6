"""What changed since the live generation, and what it means for the other articles: those
to render again (their links lead to a file that changed hands) and those whose links to check
again (they lead to an article that changed or went)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kb.knowledge.build_state import DEPS, LINK_NOTES, BuildState, unpack_outline
from kb.knowledge.content import Article, Content, Problem
from kb.knowledge.links import Outline, check_links, outline_of
from kb.knowledge.markdown import RENDER_VERSION
from kb.knowledge.search.schema import SCHEMA_VERSION


@dataclass
class Plan:
    """What changed since the live generation, and what it means for the others."""

    renamed: dict[str, str]  # old slug (alias) -> slug
    root: str  # the content folder's real path, with a trailing separator
    by_path: dict[str, Article]  # by the real path of their file
    paths: dict[str, str]  # place of a file in the content folder -> its article's slug
    digests: dict[str, str]  # slug -> what is indexed of it
    previous: dict[str, list[Any]]  # slug -> what the last build kept of its rendering
    changed: list[Article]  # to render: changed, or linking to a file that changed hands
    removed: list[str]  # slugs gone
    edited: set[str]  # places whose articles changed or went: links to them are checked


def plan_changes(content: Content, state: BuildState, incremental: bool) -> Plan:
    renamed = {alias: a.slug for a in content.articles for alias in a.aliases}
    # Each file by its place in the content folder, wherever that folder is: a release that
    # switches a symbolic link to a new checkout (docs/operations.md) renders nothing again.
    root = os.path.join(str(content.root.resolve()), "")
    by_path = content.by_real_path()
    paths = {real.removeprefix(root): a.slug for real, a in by_path.items()}
    place = {slug: name for name, slug in paths.items()}
    digests = {a.slug: _article_digest(a, place[a.slug], renamed) for a in content.articles}
    previous = state.rendered if incremental else {}
    unknown = [""]
    changed = [a for a in content.articles if previous.get(a.slug, unknown)[0] != digests[a.slug]]
    if paths != state.paths:  # a file renamed, moved, added or gone: the links to it follow
        moved = {p for p in paths.keys() | state.paths.keys() if paths.get(p) != state.paths.get(p)}
        again = {s for s, said in previous.items() if not moved.isdisjoint(said[DEPS])}
        again -= {a.slug for a in changed}
        changed += [a for a in content.articles if a.slug in again]
    removed = sorted(set(previous) - set(digests))
    was_at = {slug: name for name, slug in state.paths.items()}
    edited = {place[a.slug] for a in changed} | {was_at.get(s, "") for s in removed}
    return Plan(renamed, root, by_path, paths, digests, previous, changed, removed, edited)


def check_links_since(
    by_slug: dict[str, Article],
    rendered: dict[str, list[Any]],
    fresh: set[str],
    edited: set[str],
) -> list[Problem]:
    """The links of the articles just rendered, and of those linking to the files of articles
    that changed or went: what they found is kept; the others' warnings are the last build's."""
    sources = set(fresh)
    if edited:
        sources |= {s for s, said in rendered.items() if not edited.isdisjoint(said[DEPS])}
    outlines = _Outlines(by_slug, rendered)
    problems: list[Problem] = []
    for slug, said in rendered.items():
        if slug in sources:
            found = check_links(outlines, [slug])
            # A new list: one kept from the last build is written again as it was read.
            said = rendered[slug] = list(said)
            said[LINK_NOTES] = [[p.line, p.message, p.warning] for p in found]
            problems += found
        elif said[LINK_NOTES]:
            path = by_slug[slug].path
            problems += [Problem(path, n, m, w) for n, m, w in said[LINK_NOTES]]
    return problems


class _Outlines(Mapping[str, Outline]):
    """The articles' outlines, each made when the link check first asks for it."""

    def __init__(self, by_slug: dict[str, Article], rendered: dict[str, list[Any]]) -> None:
        self._by_slug, self._rendered, self._made = by_slug, rendered, dict[str, Outline]()

    def __getitem__(self, slug: str) -> Outline:
        outline = self._made.get(slug)
        if outline is None:
            anchors, links = unpack_outline(self._rendered[slug])
            outline = outline_of(self._by_slug[slug], anchors, links)
            self._made[slug] = outline
        return outline

    def __iter__(self) -> Iterator[str]:
        return iter(self._rendered)

    def __len__(self) -> int:
        return len(self._rendered)


def _article_digest(article: Article, place: str, renamed: dict[str, str]) -> str:
    """Changes whenever what is indexed of the article would: its file, category and place,
    and the articles its `related` names (an old slug is followed to the new)."""
    related = ",".join(renamed.get(slug, slug) for slug in article.related)
    parts = (article.digest, article.category, SCHEMA_VERSION, RENDER_VERSION, place, related)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()
