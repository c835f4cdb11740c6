"""Links between articles as a reader follows them: to a published article, to a section that
exists. Checked over the whole help center, since an edit to one article breaks links in others."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.knowledge.problems import Problem, closest
from kb.knowledge.typography import french_spacing

if TYPE_CHECKING:
    from kb.knowledge.content import Article


@dataclass(frozen=True)
class Outline:
    """What the link check needs of one rendered article (kept in the index between builds)."""

    path: Path
    draft: bool
    title: str
    anchors: tuple[str, ...]
    # (slug, fragment, line, href as written, the link's text)
    links: tuple[tuple[str, str, int, str, str], ...]


def check_links(
    outlines: Mapping[str, Outline], sources: Iterable[str] | None = None
) -> list[Problem]:
    """A link to a draft is a 404 for readers; a link to a missing section lands at the top.
    The links of the articles `sources` only, when given (those an edit may have broken)."""
    problems: list[Problem] = []
    for source in outlines if sources is None else sources:
        outline = outlines[source]
        for slug, fragment, line, href, text in outline.links:
            target = outlines.get(slug)
            if target is None:
                continue
            if _names_another_title(text, target.title) and not fragment:
                problems.append(
                    Problem(
                        outline.path,
                        line,
                        f"lien « {text} » vers « {target.title} » : un lien qui cite un article "
                        "reprend son titre exact (ou commence par une minuscule, dans la phrase)",
                        warning=True,
                    )
                )
            if target.draft and not outline.draft:
                problems.append(
                    Problem(
                        outline.path,
                        line,
                        f"lien vers un brouillon « {href} » : les lecteurs auraient une page "
                        "introuvable ; publiez-le d'abord ou retirez le lien",
                    )
                )
            elif fragment and fragment not in target.anchors:
                problems.append(
                    Problem(outline.path, line, _missing_anchor(href, fragment, target))
                )
    return problems


def _names_another_title(text: str, title: str) -> bool:
    """A link text that starts with a capital cites a title: it must be that title."""
    if not text or not text[0].isupper():
        return False
    return " ".join(french_spacing(text).split()) != " ".join(french_spacing(title).split())


def _missing_anchor(href: str, fragment: str, target: Outline) -> str:
    where = "dans cet article" if href.startswith("#") else f"dans « {target.title} »"
    hint = closest(fragment, target.anchors)
    if not hint and target.anchors:
        hint = f" (sections : {', '.join('#' + a for a in target.anchors[:8])})"
    elif not target.anchors:
        hint = " (cet article n'a pas d'intertitre)"
    return f"section « #{fragment} » introuvable {where}{hint}"


def outline_of(article: Article, anchors: Sequence[str], links: Sequence[Sequence[Any]]) -> Outline:
    """An article's outline, from its rendering or from what the previous build kept of it."""
    return Outline(
        path=article.path,
        draft=article.draft,
        title=article.title,
        anchors=tuple(str(a) for a in anchors),
        links=tuple((str(s), str(f), int(n), str(h), str(t)) for s, f, n, h, t in links),
    )
