"""content/ -> checked, rendered articles -> a new index generation."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import KbError
from kb.knowledge import canned
from kb.knowledge import content as content_module
from kb.knowledge.content import Article, Content, Problem
from kb.knowledge.links import Outline, check_links, outline_of
from kb.knowledge.markdown import RENDER_VERSION, Rendered, Renderer, article_url
from kb.knowledge.search.indexer import (
    IndexedArticle,
    build_lock,
    current_generation,
    read_meta,
    write_generation,
)
from kb.knowledge.search.schema import SCHEMA_VERSION
from kb.knowledge.typography import french_spacing

# What a build process tells of an article it rendered: slug, outline, problems found.
Learnt = tuple[str, dict[str, Any], list[Problem]]


class ContentErrors(KbError):
    """The content has errors: nothing was built, the previous index still serves."""

    def __init__(self, problems: list[Problem]) -> None:
        errors = sorted(set(p for p in problems if not p.warning))
        super().__init__(f"{len(errors)} erreur(s) dans le contenu")
        self.problems = errors
        self.warnings = sorted(set(p for p in problems if p.warning))


@dataclass(frozen=True)
class BuildReport:
    articles: int
    categories: int
    changed: int
    removed: int
    seconds: float
    generation: str
    warnings: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        seconds = f"{self.seconds:.2f}".replace(".", ",")
        return (
            f"{self.articles} articles, {self.categories} catégories, "
            f"{self.changed} modifiés, {seconds} s"
        )


def renderer_for(content: Content) -> Renderer:
    by_path = content.by_path()

    def resolve(path: Path) -> str | None:
        article = by_path.get(path)
        return article.slug if article else None

    return Renderer(resolve, known=list(by_path), broken=content.broken)


def check(content_dir: Path) -> tuple[Content, list[Problem]]:
    """Every problem in the content, rendering included (links between articles)."""
    content = content_module.load(content_dir)
    problems = list(content.problems)
    renderer = renderer_for(content)
    outlines: dict[str, Outline] = {}
    for article in content.articles:
        rendered, found = renderer.render(article)
        problems += found
        outlines[article.slug] = _outline(article, rendered)
    problems += check_links(outlines)
    problems += canned_problems(content_dir, content)
    return content, sorted(set(problems))


def _outline(article: Article, rendered: Rendered) -> Outline:
    links = [(k.slug, k.fragment, k.line, k.href, k.text) for k in rendered.outlinks]
    return outline_of(article, [h.id for h in rendered.headings], links)


def canned_problems(content_dir: Path, content: Content) -> list[Problem]:
    """The canned replies' problems: their links name articles by slug (or an old slug)."""
    slugs = {a.slug for a in content.articles} | {s for a in content.articles for s in a.aliases}
    return canned.load(content_dir, slugs, {c.slug for c in content.categories})[1]


def content_fingerprint(content_dir: Path) -> str:
    """Cheap: names, sizes and times of the content files, to tell a stale index."""
    digest = hashlib.sha256()
    if content_dir.is_dir():
        for path in sorted(content_dir.rglob("*")):
            if path.is_file():
                stat = path.stat()
                line = f"{path.relative_to(content_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n"
                digest.update(line.encode())
    return digest.hexdigest()


def content_version(content_dir: Path) -> str:
    """What the content says, whatever the host: the same files give the same version on every
    replica (unlike the fingerprint, made of modification times, that tells a change cheaply)."""
    digest = hashlib.sha256()
    if content_dir.is_dir():
        for path in sorted(content_dir.rglob("*")):
            relative = path.relative_to(content_dir)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                digest.update(f"{relative.as_posix()}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def is_stale(content_dir: Path, index_dir: Path) -> bool:
    """True when the index is missing or was built from other content than what is there now."""
    generation = current_generation(index_dir)
    if generation is None:
        return True
    try:
        meta = read_meta(generation)
    except (OSError, ValueError):
        return True
    return bool(
        meta.get("fingerprint") != content_fingerprint(content_dir)
        or meta.get("schema") != SCHEMA_VERSION
        or meta.get("render") != RENDER_VERSION
    )


def build(
    content_dir: Path,
    index_dir: Path,
    *,
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Check, render what changed, write and switch to a new generation. Raises ContentErrors."""
    started = time.perf_counter()
    fingerprint = content_fingerprint(content_dir)
    content = content_module.load(content_dir)
    if content.errors:
        raise ContentErrors(content.problems)
    renderer = renderer_for(content)
    links_key = _links_key(content)
    digests = {a.slug: _article_digest(a, links_key) for a in content.articles}

    version = content_version(content_dir)

    with build_lock(index_dir):
        generation, changed, removed, warnings = _index(
            content, renderer, digests, fingerprint, index_dir, full, progress, version
        )
    return BuildReport(
        articles=len(content.articles),
        categories=len(content.categories),
        changed=len(changed),
        removed=len(removed),
        seconds=time.perf_counter() - started,
        generation=generation.name,
        warnings=sorted(set(content.warnings + warnings)),
    )


def _index(
    content: Content,
    renderer: Renderer,
    digests: dict[str, str],
    fingerprint: str,
    index_dir: Path,
    full: bool,
    progress: Callable[[int, int], None] | None,
    version: str = "",
) -> tuple[Path, list[Article], list[str], list[Problem]]:
    """Render what changed since the live generation and write the next one."""
    base = None if full else current_generation(index_dir)
    previous: dict[str, str] = {}
    kept: dict[str, Any] = {}
    if base is not None:
        meta = read_meta(base)
        if meta.get("schema") == SCHEMA_VERSION and meta.get("render") == RENDER_VERSION:
            previous = meta.get("digests", {})
            kept = meta.get("outlines", {})
        else:
            base = None
    changed = [
        a for a in content.articles if previous.get(a.slug) != digests[a.slug] or a.slug not in kept
    ]
    removed = sorted(set(previous) - set(digests))

    renamed = {alias: a.slug for a in content.articles for alias in a.aliases}
    warnings: list[Problem] = []

    def prepare(article: Article) -> tuple[IndexedArticle, Learnt]:
        """In a build process: the article rendered, its outline and its problems."""
        rendered, found = renderer.render(article)
        outline = _outline(article, rendered)
        said = {
            "anchors": list(outline.anchors),
            "links": [list(link) for link in outline.links],
            "notes": [[p.line, p.message] for p in found if p.warning],
        }
        return _indexed(article, rendered, digests[article.slug], renamed), (
            article.slug,
            said,
            found,
        )

    def finish(learnt: list[Learnt]) -> dict[str, Any]:
        """Links checked across all articles, then the generation's meta; or ContentErrors."""
        problems: list[Problem] = []
        outlines: dict[str, dict[str, Any]] = {}
        for slug, outline, found in learnt:
            outlines[slug] = outline
            problems += found
        for article in content.articles:
            if article.slug not in outlines:  # unchanged: what the last build saw of it
                outlines[article.slug] = kept[article.slug]
                notes = kept[article.slug]["notes"]
                problems += [Problem(article.path, n, m, True) for n, m in notes]
        problems += check_links(
            {
                a.slug: outline_of(a, outlines[a.slug]["anchors"], outlines[a.slug]["links"])
                for a in content.articles
            }
        )
        if any(not p.warning for p in problems):
            raise ContentErrors(content.problems + problems)
        warnings.extend(problems)
        return {
            "schema": SCHEMA_VERSION,
            "render": RENDER_VERSION,
            "fingerprint": fingerprint,
            "content_version": version,  # the same on every replica: /readyz shows it
            "built_at": time.time(),
            "categories": [
                {"slug": c.slug, "title": c.title, "order": c.order, "description": c.description}
                for c in content.categories
            ],
            "articles": [_listing(a) for a in content.articles],
            "aliases": {alias: a.slug for a in content.articles for alias in a.aliases},
            "synonyms": [list(group) for group in content.synonyms],
            "digests": digests,
            "outlines": outlines,
        }

    total = len(changed)
    report_progress = (lambda n: progress(n, total)) if progress else None
    # From the live generation go the removed articles and the old versions of the changed.
    gone = removed + [a.slug for a in changed] if base is not None else []
    generation = write_generation(
        index_dir, changed, prepare, finish, base=base, remove=gone, progress=report_progress
    )
    return generation, changed, removed, warnings


def _links_key(content: Content) -> str:
    """Changes when any article's file maps to another slug: links must then be re-resolved."""
    digest = hashlib.sha256()
    for article in sorted(content.articles, key=lambda a: str(a.path)):
        digest.update(f"{article.path.resolve()}={article.slug}\n".encode())
    return digest.hexdigest()


def _article_digest(article: Article, links_key: str) -> str:
    parts = (article.digest, article.category, SCHEMA_VERSION, RENDER_VERSION, links_key)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _listing(article: Article) -> dict[str, object]:
    return {
        "slug": article.slug,
        "title": french_spacing(article.title),
        "category": article.category,
        "summary": french_spacing(article.summary),
        "order": article.order,
        "featured": article.featured,
        "updated": article.updated.isoformat() if article.updated else None,
        "draft": article.draft,
        "url": article_url(article.slug),
    }


def _indexed(
    article: Article, rendered: Rendered, digest: str, renamed: dict[str, str]
) -> IndexedArticle:
    return IndexedArticle(
        slug=article.slug,
        category=article.category,
        # Shown as readers see them: the spaces before ? ! ; : made non-breaking.
        title=french_spacing(article.title),
        summary=french_spacing(article.summary),
        keywords=article.keywords,
        headings=tuple((h.level, h.text, h.id) for h in rendered.headings),
        html=rendered.html,
        text=rendered.text,
        body_text=rendered.body_text,
        meta={
            "summary": french_spacing(article.summary),
            "keywords": list(article.keywords),
            "headings": [[h.level, h.text, h.id] for h in rendered.headings],
            "updated": article.updated.isoformat() if article.updated else None,
            "order": article.order,
            "featured": article.featured,
            "aliases": list(article.aliases),
            "related": [renamed.get(slug, slug) for slug in article.related],
            "links": list(rendered.links),
            "draft": article.draft,
        },
        digest=digest,
    )
