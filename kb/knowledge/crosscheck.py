"""What no single file can tell: unique slugs and aliases, known related, featured ranks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kb.knowledge.problems import Problem, closest, display

if TYPE_CHECKING:
    from kb.knowledge.content import Article, Content


def cross_check(content: Content) -> None:
    """What no single file can tell: unique slugs and aliases, known related, featured ranks."""
    owners: dict[str, tuple[Article, str]] = {}
    for article in sorted(content.articles, key=lambda a: str(a.path)):
        names = [(article.slug, "slug")] + [(alias, "aliases") for alias in article.aliases]
        for name, key in names:
            if name in owners:
                other, other_key = owners[name]
                what = "adresse" if key == "slug" else "ancienne adresse"
                problems_line = article.line_of(key) if key != "slug" else article.line_of("slug")
                content.problems.append(
                    Problem(
                        article.path,
                        problems_line,
                        f"{what} « {name} » déjà utilisée par {display(other.path)}"
                        f" ({'slug' if other_key == 'slug' else 'aliases'})",
                    )
                )
            else:
                owners[name] = (article, key)
    slugs = {a.slug for a in content.articles}
    ranks: dict[int, Article] = {}
    for article in sorted(content.articles, key=lambda a: str(a.path)):
        for slug in article.related:
            if slug not in slugs:
                content.problems.append(
                    Problem(
                        article.path,
                        article.line_of("related"),
                        f"article lié inconnu « {slug} »{closest(slug, slugs)}",
                    )
                )
        if article.featured is not None and not article.draft:
            if article.featured in ranks:
                content.problems.append(
                    Problem(
                        article.path,
                        article.line_of("featured"),
                        f"rang featured {article.featured} déjà pris par "
                        f"{display(ranks[article.featured].path)}",
                    )
                )
            else:
                ranks[article.featured] = article
