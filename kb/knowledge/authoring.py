"""`kb new`: a draft article from a title, its front matter and a body to replace."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from kb.errors import KbError
from kb.knowledge.content import load
from kb.knowledge.problems import display
from kb.knowledge.slugs import SLUG_RE, slugify
from kb.knowledge.writing import TEMPLATE_BODY


class ArticleExists(KbError):
    status = 400
    code = "article_existant"


def new_article(
    root: Path, title: str, category: str, on: dt.date, slug: str | None = None
) -> Path:
    """Write a draft article with its front matter; its slug comes from the title unless given."""
    content = load(root)
    if content.category(category) is None:
        known = ", ".join(c.slug for c in content.categories) or "aucune"
        raise ArticleExists(f"catégorie inconnue « {category} » (catégories : {known})")
    title = " ".join(title.split())
    if not title:
        raise ArticleExists("le titre est vide")
    if slug is not None and not SLUG_RE.match(slug):
        raise ArticleExists(
            f"slug invalide « {slug} » : minuscules sans accents, chiffres et tirets "
            f"(par exemple « {slugify(slug) or 'mon-article'} »)"
        )
    slug = slug or slugify(title)
    if not slug:
        raise ArticleExists(
            f"impossible de faire une adresse avec le titre « {title} » : donnez-la avec --slug"
        )
    for article in content.articles:
        if slug == article.slug or slug in article.aliases:
            raise ArticleExists(
                f"l'adresse « {slug} » est déjà prise par {display(article.path)} : "
                "choisissez un autre titre ou donnez une adresse avec --slug"
            )
    path = root / category / f"{slug}.md"
    if path.exists():
        raise ArticleExists(f"{display(path)} existe déjà")
    header = yaml.safe_dump(
        {"title": title, "summary": "", "keywords": [], "updated": on, "draft": True},
        allow_unicode=True,
        sort_keys=False,
    )
    body = TEMPLATE_BODY
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(f"---\n{header}---\n{body}")
    return path
