"""content/ -> checked, rendered articles -> a new index generation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import KbError
from kb.knowledge import canned
from kb.knowledge import content as content_module
from kb.knowledge import tree as tree_module
from kb.knowledge.build_state import (
    LISTING,
    NOTES,
    ArticleMemo,
    BuildState,
    collector_paused,
    rendering,
)
from kb.knowledge.changes import Plan, check_links_since, plan_changes
from kb.knowledge.content import Article, Content, Problem
from kb.knowledge.links import Outline, check_links, outline_of
from kb.knowledge.markdown import RENDER_VERSION, Rendered, Renderer, article_url
from kb.knowledge.search.indexer import (
    IndexedArticle,
    RawJson,
    build_lock,
    current_generation,
    read_meta,
    write_generation,
)
from kb.knowledge.search.integrity import FileCheck
from kb.knowledge.search.schema import SCHEMA_VERSION
from kb.knowledge.tree import Tree
from kb.knowledge.typography import french_spacing

VERSIONS = (SCHEMA_VERSION, RENDER_VERSION)
CHANGING = "fichier modifié pendant la construction : relancez-la"
# What a build process tells of an article it rendered: slug, outline, problems found.
Learnt = tuple[str, list[Any], list[Problem]]  # see build_state.rendering


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
    return _renderer(content, content.by_real_path())


def _renderer(content: Content, by_path: dict[str, Article]) -> Renderer:
    def resolve(path: Path) -> str | None:
        article = by_path.get(str(path))
        return article.slug if article else None

    return Renderer(resolve, known=lambda: list(by_path), broken=content.broken)


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
    return tree_module.fingerprint(tree_module.scan(content_dir))


def content_version(content_dir: Path) -> str:
    """What the content says, whatever the host: the same files give the same version on every
    replica (unlike the fingerprint, made of modification times, that tells a change cheaply)."""
    return Tree(content_dir).version()


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
    """Check, render what changed, write and switch to a new generation. Raises ContentErrors.

    What the live generation's build learnt (build_state) spares reading, parsing and
    rendering the files that have not changed: the work follows the size of the edit."""
    started = time.perf_counter()
    with build_lock(index_dir):
        base = None if full else current_generation(index_dir)
        with collector_paused():
            state = BuildState.read(base, VERSIONS)
            if not state.rendered:
                base = None  # nothing known of it: everything is rendered again
            tree = Tree(content_dir, state.files, state.scanned_at)
            memo = ArticleMemo(tree, state.articles)
            content = content_module.load(content_dir, memo)
            if content.errors:
                raise ContentErrors(content.problems)
            plan = plan_changes(content, state, base is not None)
        generation, warnings = _index(content, tree, memo, state, plan, base, index_dir, progress)
    return BuildReport(
        articles=len(content.articles),
        categories=len(content.categories),
        changed=len(plan.changed),
        removed=len(plan.removed),
        seconds=time.perf_counter() - started,
        generation=generation.name,
        warnings=sorted(set(content.warnings + warnings)),
    )


def _index(
    content: Content,
    tree: Tree,
    memo: ArticleMemo,
    state: BuildState,
    plan: Plan,
    base: Path | None,
    index_dir: Path,
    progress: Callable[[int, int], None] | None,
) -> tuple[Path, list[Problem]]:
    """Render what changed since the live generation and write the next one."""
    renderer = _renderer(content, plan.by_path)
    root, digests, renamed, previous = plan.root, plan.digests, plan.renamed, plan.previous
    warnings: list[Problem] = []

    def prepare(article: Article) -> tuple[IndexedArticle, Learnt]:
        """In a build process: the article rendered, its outline and its problems."""
        whole = memo.whole(article)  # its body, read here: not held by the parent
        rendered, found = renderer.render(whole or article)
        if whole is None:  # then `finish` raises ContentErrors
            found.append(Problem(article.path, 1, CHANGING))
        said = rendering(
            digest=digests[article.slug],
            deps=sorted({k.target.removeprefix(root) for k in rendered.outlinks if k.target}),
            notes=[[p.line, p.message] for p in found if p.warning],
            listing=json.dumps(_listing(article), ensure_ascii=False).encode(),
            anchors=[h.id for h in rendered.headings],
            links=[[k.slug, k.fragment, k.line, k.href, k.text] for k in rendered.outlinks],
        )
        return _indexed(article, rendered, digests[article.slug], renamed), (
            article.slug,
            said,
            found,
        )

    def finish(learnt: list[Learnt]) -> dict[str, Any]:
        """Links checked where an edit may have broken them, then the generation's meta; or
        ContentErrors."""
        with collector_paused():
            return meta(learnt)

    def meta(learnt: list[Learnt]) -> dict[str, Any]:
        problems: list[Problem] = []
        rendered: dict[str, list[Any]] = {}
        for slug, said, found in learnt:
            rendered[slug] = said
            problems += found
        by_slug = content.by_slug()
        for article in content.articles:
            if article.slug not in rendered:  # unchanged: what the last build saw of it
                said = rendered[article.slug] = previous[article.slug]
                problems += [Problem(article.path, n, m, True) for n, m in said[NOTES]]
        problems += check_links_since(by_slug, rendered, {s for s, _, _ in learnt}, plan.edited)
        if any(not p.warning for p in problems):
            raise ContentErrors(content.problems + problems)
        warnings.extend(problems)
        state.rendered, state.paths = rendered, plan.paths
        return {
            "schema": SCHEMA_VERSION,
            "render": RENDER_VERSION,
            "fingerprint": tree.fingerprint(),
            "content_version": tree.version(),  # the same on every replica: /readyz shows it
            "built_at": time.time(),
            "categories": [
                {"slug": c.slug, "title": c.title, "order": c.order, "description": c.description}
                for c in content.categories
            ],
            "articles": RawJson(
                [b"[", b", ".join([rendered[a.slug][LISTING] for a in content.articles]), b"]"]
            ),
            "aliases": renamed,
            "synonyms": [list(group) for group in content.synonyms],
        }

    def keep(index_files: dict[str, FileCheck]) -> dict[str, bytes | None]:
        """What the next build may trust, written with the generation."""
        with collector_paused():
            return _state(index_files)

    def _state(index_files: dict[str, FileCheck]) -> dict[str, bytes | None]:
        new = BuildState(
            versions=VERSIONS,
            scanned_at=tree.scanned_at,
            files=tree.known(),
            articles=memo.records,
            rendered=state.rendered,
            paths=state.paths,
            index_files=index_files,
            as_read=state.as_read,
            parts=state.parts if base is not None else [],
            part_crcs=state.part_crcs,
        )
        return new.dumps()

    changed = plan.changed
    total = len(changed)
    report_progress = (lambda n: progress(n, total)) if progress else None
    # From the live generation go the removed articles and the old versions of the changed.
    gone = plan.removed + [a.slug for a in changed if a.slug in previous] if base else []
    generation = write_generation(
        index_dir,
        changed,
        prepare,
        finish,
        base=base,
        remove=gone,
        progress=report_progress,
        known_files=state.index_files if base is not None else None,
        keep=keep,
    )
    return generation, warnings


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
