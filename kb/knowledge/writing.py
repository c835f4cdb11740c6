"""What a reader would stumble on in one article's text: `kb new`'s template left in, a long
text without headings, French punctuation written with no space."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from markdown_it.token import Token

from kb.knowledge.problems import Problem
from kb.knowledge.typography import missing_spaces

if TYPE_CHECKING:
    from kb.knowledge.content import Article

# The body `kb new` writes; a sentence of it still there was never rewritten.
TEMPLATE_INTRO = "Répondez d'abord à la question en une ou deux phrases."
TEMPLATE_STEPS = ("Première étape.", "Deuxième étape.")
TEMPLATE_BODY = f"{TEMPLATE_INTRO}\n\n## Étapes\n\n1. {TEMPLATE_STEPS[0]}\n2. {TEMPLATE_STEPS[1]}\n"
TEMPLATE_SENTENCES = frozenset((TEMPLATE_INTRO, *TEMPLATE_STEPS))
# Past this many words, a reader looks for headings to find their part of the answer.
LONG_WITHOUT_HEADINGS = 400
_WORD = re.compile(r"\w+")


def check(article: Article, tokens: list[Token]) -> list[Problem]:
    """The problems of one article's text, each at its line of the file."""
    problems: list[Problem] = []
    words = 0
    headings = 0
    for token in tokens:
        if token.type == "heading_open" and token.tag != "h1":
            headings += 1
        if token.type != "inline" or not token.children:
            continue
        line = article.body_line + (token.map[0] if token.map else 0)
        text = "".join(
            c.content if c.type == "text" else "\n" if c.type.endswith("break") else " "
            for c in token.children
            if c.type in ("text", "softbreak", "hardbreak", "code_inline")
        )
        words += len(_WORD.findall(text))
        if token.content.strip() in TEMPLATE_SENTENCES:
            problems.append(
                Problem(
                    article.path,
                    line,
                    f"texte du modèle de kb new laissé tel quel « {token.content.strip()} » : "
                    "remplacez-le par le vrai texte",
                    warning=article.draft,
                )
            )
        for word in missing_spaces(text):
            problems.append(_spacing(article, _line_of(word, token, line), word))
    for key in ("title", "summary"):
        value = article.title if key == "title" else article.summary
        for word in missing_spaces(value):
            problems.append(_spacing(article, article.line_of(key), word))
    if words > LONG_WITHOUT_HEADINGS and headings == 0:
        problems.append(
            Problem(
                article.path,
                article.body_line,
                f"article long ({words} mots) sans intertitre : ajoutez des titres « ## » "
                "pour que chacun trouve sa partie de la réponse",
                warning=True,
            )
        )
    return problems


def _spacing(article: Article, line: int, word: str) -> Problem:
    return Problem(
        article.path,
        line,
        f"espace manquante dans « {word} » : en français, ? ! ; : et » suivent une espace, "
        "« en est suivi (l'espace insécable est ajoutée à l'affichage)",
        warning=True,
    )


def _line_of(word: str, token: Token, first: int) -> int:
    """The file line of a word of a paragraph that spans several lines."""
    for offset, raw in enumerate(token.content.split("\n")):
        if word in raw:
            return first + offset
    return first
