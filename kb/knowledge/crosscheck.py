"""What no single file can tell: unique slugs and aliases, known related, featured ranks."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from kb.knowledge.problems import Problem, closest, display

if TYPE_CHECKING:
    from kb.knowledge.content import Article, Content


def cross_check(content: Content) -> None:
    """Each clash is blamed on the newer file: the older one was fine until it came."""
    owners: dict[str, tuple[Article, str]] = {}
    # In the order of their paths (root / category / name), without making each path text.
    in_order = sorted(content.articles, key=lambda a: f"{a.category}/{a.path.name}")
    for article in in_order:
        if not article.aliases and article.slug not in owners:  # most articles: no clash
            owners[article.slug] = (article, "slug")
            continue
        names = [(article.slug, "slug")] + [(alias, "aliases") for alias in article.aliases]
        for name, key in names:
            if name not in owners:
                owners[name] = (article, key)
                continue
            other, other_key = owners[name]
            if other is article:
                continue
            if _age(article.path) < _age(other.path):
                owners[name] = (article, key)
                article, key, other, other_key = other, other_key, article, key
            what = "adresse" if key == "slug" else "ancienne adresse"
            content.problems.append(
                Problem(
                    article.path,
                    article.line_of(key),
                    f"{what} « {name} » déjà utilisée par {display(other.path)} ({other_key}), "
                    "plus ancien : choisissez-en une autre",
                )
            )
    by_slug = {a.slug: a for a in content.articles}
    renamed = {alias: a.slug for a in content.articles for alias in a.aliases}
    ranks: dict[int, Article] = {}
    for article in in_order:
        for slug in article.related:
            target = by_slug.get(slug)
            # Most links lead to a known article under its own slug, published or from a draft:
            # nothing for _check_related to say (a rule added there must be added here).
            if target is None or slug in renamed or (target.draft and not article.draft):
                _check_related(content, article, slug, by_slug, renamed)
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


def _check_related(
    content: Content,
    article: Article,
    slug: str,
    by_slug: dict[str, Article],
    renamed: dict[str, str],
) -> None:
    line = article.line_of("related")
    if slug in renamed:  # still shown: the build follows the alias
        content.problems.append(
            Problem(
                article.path,
                line,
                f"article lié « {slug} » : c'est l'ancienne adresse de « {renamed[slug]} », "
                f"écrivez « {renamed[slug]} »",
                warning=True,
            )
        )
    elif slug in content.broken_slugs:
        return  # that file's own error says what is wrong
    elif slug not in by_slug:
        content.problems.append(
            Problem(article.path, line, f"article lié inconnu « {slug} »{closest(slug, by_slug)}")
        )
    elif by_slug[slug].draft and not article.draft:
        content.problems.append(
            Problem(
                article.path,
                line,
                f"article lié « {slug} » encore en brouillon : il ne sera proposé aux lecteurs "
                "qu'une fois publié",
                warning=True,
            )
        )


def _age(path: Path) -> tuple[float, float]:
    """(when git first saw the file, its modification time): later is newer. A file git has
    not committed yet is the newest of all; without git, the modification time decides."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = math.inf
    return _added_at(path.resolve()), mtime


def _added_at(path: Path) -> float:
    try:
        done = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%ct", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return 0.0
    if done.returncode != 0:
        return 0.0  # not in a repository: the modification time decides
    stamps = [int(s) for s in done.stdout.split() if s.isdigit()]
    return float(min(stamps)) if stamps else math.inf
