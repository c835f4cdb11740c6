"""content/ -> categories and articles (front matter + Markdown); every problem has path:line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kb.knowledge.crosscheck import cross_check
from kb.knowledge.fields import FieldChecker
from kb.knowledge.problems import Problem, display
from kb.knowledge.slugs import SLUG_RE, slugify
from kb.knowledge.synonyms import load_synonyms
from kb.knowledge.yaml_files import decode, parse_yaml, read_bytes, read_text

__all__ = ["SLUG_RE", "Article", "Category", "Content", "Problem", "display", "load", "slugify"]

ARTICLE_KEYS = (
    "title",
    "summary",
    "keywords",
    "slug",
    "aliases",
    "related",
    "featured",
    "order",
    "updated",
    "draft",
)
CATEGORY_KEYS = ("title", "order", "description")
CATEGORY_FILE = "_category.yml"
SYNONYMS_FILE = "synonymes.yml"
LONG_TITLE = 90


@dataclass(frozen=True)
class Category:
    slug: str
    title: str
    order: int
    description: str
    path: Path


@dataclass(frozen=True)
class Article:
    slug: str
    category: str
    title: str
    body: str
    path: Path
    body_line: int  # line of the file where the Markdown body starts (1-based)
    digest: str  # sha256 of the file's bytes
    summary: str = ""
    keywords: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    featured: int | None = None
    order: int | None = None
    updated: dt.date | None = None
    draft: bool = False
    key_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, 1)


@dataclass
class Content:
    """Everything under content/, with the problems found while reading it. Each article's
    file is `root / article.category / name`: a category is a folder, its articles lie flat
    in it."""

    root: Path
    categories: list[Category] = field(default_factory=list)
    articles: list[Article] = field(default_factory=list)
    synonyms: list[tuple[str, ...]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Article files that could not be read: links and `related` naming them are not reported
    # again, so one broken file gives one error.
    broken: set[Path] = field(default_factory=set)
    broken_slugs: set[str] = field(default_factory=set)
    # Article files that are symbolic links, as "category/name": only theirs are resolved one
    # by one.
    linked: set[str] = field(default_factory=set)

    @property
    def errors(self) -> list[Problem]:
        return sorted(p for p in self.problems if not p.warning)

    @property
    def warnings(self) -> list[Problem]:
        return sorted(p for p in self.problems if p.warning)

    def by_slug(self) -> dict[str, Article]:
        return {a.slug: a for a in self.articles}

    def by_path(self) -> dict[Path, Article]:
        return {Path(real): a for real, a in self.by_real_path().items()}

    def by_real_path(self) -> dict[str, Article]:
        """Articles by the real path of their file, as `Path.resolve()` gives it: each folder
        resolved once, not each of thousands of files, and no article's path made text (which
        cost 60 ms of a build after one edit at 20,000 articles)."""
        folders: dict[str, str] = {}
        found: dict[str, Article] = {}
        linked = self.linked
        for article in self.articles:
            name, category = article.path.name, article.category
            if linked and f"{category}/{name}" in linked:
                found[str(article.path.resolve())] = article
                continue
            real = folders.get(category)
            if real is None:
                real = folders[category] = str((self.root / category).resolve())
            found[f"{real}{os.sep}{name}"] = article  # as os.path.join, for a plain name
        return found

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)


class Memo(Protocol):
    """What a build kept of the articles it read before: an article whose file has not changed
    is taken from it, with its problems, instead of being read and parsed again."""

    def recall(self, path: Path, name: str, category: str) -> tuple[Article, list[Problem]] | None:
        """The article in the file `name` (relative to the content folder), if unchanged."""

    def remember(
        self, name: str, category: str, article: Article, problems: list[Problem]
    ) -> Article:
        """An article just read, and its own problems; returns the article to keep (a build
        keeps them without their bodies, read again when rendered)."""


def load(root: Path, memo: Memo | None = None) -> Content:
    """Read every category, article and the synonyms; never raises on bad content."""
    content = Content(root=root)
    if not root.is_dir():
        content.problems.append(Problem(root, 1, "dossier de contenu introuvable"))
        return content
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            _load_category(entry, content, memo)
        elif entry.suffix == ".md" and entry.name.lower() != "readme.md":
            content.problems.append(
                Problem(entry, 1, "article hors catégorie : placez-le dans un dossier de catégorie")
            )
    synonyms = root / SYNONYMS_FILE
    if synonyms.exists():
        content.synonyms = load_synonyms(synonyms, content.problems)
    content.categories.sort(key=lambda c: (c.order, c.title))
    cross_check(content)
    return content


def _load_category(folder: Path, content: Content, memo: Memo | None = None) -> None:
    meta_path = folder / CATEGORY_FILE
    # The kind of each entry from the listing: thousands of articles are not stat-ed.
    with os.scandir(folder) as listing:
        entries = sorted((e.name, e.is_dir(), e.is_symlink()) for e in listing)
    articles = [n for n, is_dir, _ in entries if n.endswith(".md") and len(n) > 3 and not is_dir]
    subfolders = [n for n, is_dir, _ in entries if is_dir and not n.startswith(".")]
    content.linked.update(f"{folder.name}/{n}" for n, _, link in entries if link)
    # The articles' paths made as iterdir makes them, without parsing each name again (20,000
    # of them); a name listed by one look and not the other is joined as usual.
    try:
        children = {path.name: path for path in folder.iterdir()}
    except OSError:  # the folder gone since: each article says it cannot be read
        children = {}
    parsed = None
    if not meta_path.exists():
        content.problems.append(
            Problem(
                folder,
                1,
                f"dossier de catégorie sans {CATEGORY_FILE} : "
                "créez-le avec title, order et description",
            )
        )
    else:
        text = read_text(meta_path, content.problems)
        if text is not None:
            parsed = parse_yaml(text, meta_path, 1, content.problems)
    # The articles are read even so: their own problems show now, and links to them hold.
    data, lines = parsed if parsed is not None else ({}, {"title": 1})
    check = FieldChecker(meta_path, lines, content.problems)
    check.unknown_keys(data, CATEGORY_KEYS)
    title = check.string(data, "title", required=parsed is not None)
    order = check.integer(data, "order")
    description = check.string(data, "description")
    if not SLUG_RE.match(folder.name):
        content.problems.append(
            Problem(folder, 1, f"nom de dossier invalide : utilisez « {slugify(folder.name)} »")
        )
    category = Category(
        slug=folder.name,
        title=title or folder.name,
        order=order if order is not None else 1000,
        description=description or "",
        path=meta_path,
    )
    content.categories.append(category)
    for name in articles:
        path = children.get(name) or folder / name
        recalled = memo.recall(path, f"{folder.name}/{name}", category.slug) if memo else None
        if recalled is not None:
            content.articles.append(recalled[0])
            content.problems += recalled[1]
            continue
        problems: list[Problem] = []
        article = _load_article(path, category.slug, problems)
        content.problems += problems
        if article is not None:
            if memo is not None:
                article = memo.remember(f"{folder.name}/{name}", category.slug, article, problems)
            content.articles.append(article)
        else:
            content.broken.add(path.resolve())
            content.broken_slugs.add(_declared_slug(path))
    for sub in subfolders:
        content.problems.append(
            Problem(
                folder / sub,
                1,
                "sous-dossier ignoré : les articles se placent à plat dans la catégorie",
            )
        )


def with_body(article: Article) -> Article | None:
    """The article with its body read again from its file (a build keeps articles without
    their bodies until it renders them); None when the file is no longer what was read."""
    try:
        raw = article.path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(raw).hexdigest() != article.digest:
        return None
    text = decode(raw, article.path, [])
    if text is None:
        return None
    body = "\n".join(text.split("\n")[article.body_line - 1 :])
    return dataclasses.replace(article, body=body)


def _load_article(path: Path, category: str, problems: list[Problem]) -> Article | None:
    raw = read_bytes(path, problems)
    if raw is None:
        return None
    text = decode(raw, path, problems)
    if text is None:
        return None
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != "---":
        problems.append(
            Problem(
                path,
                start + 1 if start < len(lines) else 1,
                "en-tête manquant : le fichier doit commencer par « --- », "
                "puis « title: … », puis « --- »",
            )
        )
        return None
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].rstrip() in ("---", "...")), None
    )
    if end is None:
        problems.append(
            Problem(
                path, start + 1, "en-tête non fermé : ajoutez une ligne « --- » après l'en-tête"
            )
        )
        return None
    header = "\n".join(lines[start + 1 : end])
    parsed = parse_yaml(header, path, start + 2, problems)
    if parsed is None:
        return None
    data, key_lines = parsed
    check = FieldChecker(path, key_lines, problems, default_line=start + 1)
    check.unknown_keys(data, ARTICLE_KEYS)
    title = check.string(data, "title", required=True)
    summary = check.string(data, "summary") or ""
    keywords = check.string_list(data, "keywords", comma=True)
    slug = check.slug(data, "slug")
    aliases = check.string_list(data, "aliases", slugs=True)
    related = check.string_list(data, "related", slugs=True)
    featured = check.integer(data, "featured", low=1, high=3)
    order = check.integer(data, "order")
    updated = check.date(data, "updated")
    draft = check.boolean(data, "draft")
    if slug is None and "slug" not in data:
        slug = path.stem
        if not SLUG_RE.match(slug):
            problems.append(
                Problem(
                    path,
                    1,
                    f"nom de fichier invalide pour une adresse : renommez-le "
                    f"« {slugify(path.stem) or 'article'}.md » ou ajoutez « slug: »",
                )
            )
    body = "\n".join(lines[end + 1 :])
    if not body.strip():
        problems.append(
            Problem(path, end + 1, "article vide : écrivez le texte de l'article sous l'en-tête")
        )
    if slug is None:
        return None
    if title is None:
        title = slug  # reported above; kept so that links to this article hold
    if len(title) > LONG_TITLE:
        problems.append(
            Problem(
                path,
                check.line("title"),
                f"titre long ({len(title)} caractères) : {LONG_TITLE} au plus se lisent d'un coup "
                "d'œil",
                warning=True,
            )
        )
    if not summary:
        problems.append(Problem(path, start + 1, "article sans « summary » (résumé)", warning=True))
    if not keywords:
        problems.append(
            Problem(path, start + 1, "article sans « keywords » (mots-clés)", warning=True)
        )
    return Article(
        slug=slug,
        category=category,
        title=title,
        body=body,
        path=path,
        body_line=end + 2,
        digest=hashlib.sha256(raw).hexdigest(),
        summary=summary,
        keywords=tuple(keywords),
        aliases=tuple(aliases),
        related=tuple(related),
        featured=featured,
        order=order,
        updated=updated,
        draft=bool(draft),
        key_lines=key_lines,
    )


def _declared_slug(path: Path) -> str:
    """The slug a file that cannot be read was meant to have: its `slug:` line, or its name."""
    try:
        for line in path.read_text(encoding="utf-8", errors="replace").split("\n")[:40]:
            if line.startswith("slug:"):
                return line.removeprefix("slug:").strip().strip("'\"")
    except OSError:
        pass
    return path.stem
