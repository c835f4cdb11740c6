"""markdown-it-py setup: HTML, plain text, headings with anchors, links between articles."""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from kb.knowledge import writing
from kb.knowledge.content import Article, Problem, slugify
from kb.knowledge.typography import french_spacing

# Bump when the HTML produced for the same Markdown changes: every article is re-rendered.
RENDER_VERSION = "4"
ANCHOR_LEVELS = ("h2", "h3", "h4")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    id: str


@dataclass(frozen=True)
class Link:
    """A link from an article to an article (itself for `#section`), at a line of its file."""

    slug: str
    fragment: str
    line: int
    href: str
    text: str = ""
    target: str = ""  # the real path of the linked file: it must stay that article's


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str  # everything a reader sees, headings included: what snippets quote
    body_text: str  # the same without the headings, which are indexed on their own
    headings: tuple[Heading, ...]
    outlinks: tuple[Link, ...] = ()

    @property
    def links(self) -> tuple[str, ...]:
        """Slugs of the other articles this one links to."""
        return tuple(dict.fromkeys(link.slug for link in self.outlinks if link.href[:1] != "#"))


def article_url(slug: str) -> str:
    return f"/articles/{quote(slug)}"


def make_markdown() -> MarkdownIt:
    """CommonMark with tables; raw HTML is shown as text, never passed through."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    md.add_render_rule("heading_open", _heading_open)
    md.add_render_rule("heading_close", _heading_close)
    md.core.ruler.push("french_spacing", _french_spacing)
    return md


def _french_spacing(state: StateCore) -> None:
    """Editors type plain spaces; readers get no-break ones (code is left as written)."""
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        for child in token.children:
            if child.type == "text":
                child.content = french_spacing(child.content)


def _table_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # A wide table scrolls inside its own box instead of widening the page on a phone; the
    # box takes the focus (to scroll from the keyboard), so it is a region named after the
    # section it is in.
    section = env.get("section")
    label = escapeHtml(f"Tableau de la section « {section} »" if section else "Tableau")
    return (
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{label}">'
        + self.renderToken(tokens, idx, options, env)
    )


def _table_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>"


def _heading_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    html = self.renderToken(tokens, idx, options, env)
    return '<div class="section-heading">' + html if "anchor" in tokens[idx].meta else html


def _heading_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """After the heading, not in it: a screen reader reads the heading's text alone."""
    html = self.renderToken(tokens, idx, options, env)
    meta = tokens[idx].meta
    if "anchor" not in meta:
        return html
    env["section"] = meta["text"]
    # The visible "#" begins the link's name (RGAA 6.1, WCAG 2.5.3 "label in name").
    hidden = escapeHtml(f" Lien vers la section « {meta['text']} »")
    link = (
        f'<a href="#{escapeHtml(meta["anchor"])}" class="heading-anchor">'
        f'#<span class="visually-hidden">{hidden}</span></a>'
    )
    return html.rstrip("\n") + link + "</div>\n"


class Renderer:
    """Renders articles; `resolve` maps an article file's absolute path to its slug. Links to
    the files in `broken` are left alone: their own error says what is wrong, once."""

    def __init__(
        self,
        resolve: Callable[[Path], str | None],
        known: Callable[[], Sequence[str]] = tuple,
        broken: Collection[Path] = (),
    ) -> None:
        self.md = make_markdown()
        self.resolve = resolve
        self._known = known
        self.broken = set(broken)

    @functools.cached_property
    def known(self) -> list[str]:
        """The names of the article files, for a hint when a link names none of them."""
        return [os.path.basename(p) for p in self._known()]

    def render(self, article: Article) -> tuple[Rendered, list[Problem]]:
        problems: list[Problem] = []
        tokens = self.md.parse(article.body)
        problems += writing.check(article, tokens)
        # Before the heading anchors add their "#".
        text, body_text = _plain_text(tokens), _plain_text(tokens, headings=False)
        headings = self._anchor_headings(tokens)
        links = self._rewrite_links(tokens, article, problems)
        html = self.md.renderer.render(tokens, self.md.options, {})
        return Rendered(html, text, body_text, tuple(headings), tuple(links)), problems

    def _anchor_headings(self, tokens: list[Token]) -> list[Heading]:
        headings: list[Heading] = []
        used: set[str] = set()
        for i, token in enumerate(tokens):
            if token.type != "heading_open":
                continue
            inline = tokens[i + 1]
            text = _inline_text(inline.children or [])
            base = slugify(text) or "section"
            anchor, n = base, 2
            while anchor in used:
                anchor, n = f"{base}-{n}", n + 1
            used.add(anchor)
            token.attrSet("id", anchor)
            level = int(token.tag[1])
            headings.append(Heading(level, text, anchor))
            if token.tag in ANCHOR_LEVELS:
                # A visible link to copy, so support can share this very section; it follows
                # the heading (see _heading_close).
                token.meta["anchor"] = anchor
                tokens[i + 2].meta.update(anchor=anchor, text=text)
        return headings

    def _rewrite_links(
        self, tokens: list[Token], article: Article, problems: list[Problem]
    ) -> list[Link]:
        links: list[Link] = []
        for token in tokens:
            if token.type != "inline" or not token.children:
                continue
            for n, child in enumerate(token.children):
                if child.type != "link_open":
                    continue
                text = _link_text(token.children, n)
                href = str(child.attrGet("href") or "")
                parts = urlsplit(href)
                line = article.body_line + (token.map[0] if token.map else 0)
                if href.startswith("#") and len(href) > 1:
                    links.append(Link(article.slug, unquote(parts.fragment), line, href, text))
                    continue
                if parts.scheme or parts.netloc or not parts.path.endswith(".md"):
                    continue
                target = (article.path.parent / unquote(parts.path)).resolve()
                slug = self.resolve(target)
                if slug is None and target in self.broken:
                    continue
                if slug is None:
                    hint = difflib.get_close_matches(Path(parts.path).name, self.known, n=1)
                    suggestion = f" : vouliez-vous dire « {hint[0]} » ?" if hint else ""
                    problems.append(
                        Problem(
                            article.path,
                            line,
                            f"lien vers un article introuvable « {href} »{suggestion}",
                        )
                    )
                    continue
                links.append(Link(slug, unquote(parts.fragment), line, href, text, str(target)))
                fragment = f"#{parts.fragment}" if parts.fragment else ""
                child.attrSet("href", article_url(slug) + fragment)
        return links


def _link_text(children: list[Token], start: int) -> str:
    """The words of the link opened at children[start]."""
    words: list[str] = []
    for child in children[start + 1 :]:
        if child.type == "link_close":
            break
        if child.type in ("text", "code_inline"):
            words.append(child.content)
    return "".join(words).strip()


def _inline_text(children: list[Token]) -> str:
    return "".join(c.content for c in children if c.type in ("text", "code_inline")).strip()


def _plain_text(tokens: list[Token], headings: bool = True) -> str:
    """The words a reader sees, one block a line."""
    blocks: list[str] = []
    in_heading = False
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            in_heading = token.type == "heading_open"
        elif token.type == "inline" and (headings or not in_heading):
            blocks.append(_inline_text_with_breaks(token.children or []))
        elif token.type in ("code_block", "fence"):
            blocks.append(token.content.strip())
    return "\n".join(b for b in blocks if b)


def _inline_text_with_breaks(children: list[Token]) -> str:
    out: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "image":
            out.append(_inline_text(child.children or []))
    return "".join(out).strip()


def render_fragment(markdown: str, **env: Any) -> str:
    """Markdown that is not an article (a category description): same rules, no links checked."""
    html: str = make_markdown().render(markdown, env)
    return html
