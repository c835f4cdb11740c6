"""The benches' corpora, written as kb content folders: the demarches-simplifiees.fr FAQ and
alwaysdata's help center (imported from ../shared/corpus beside the checkout, or
$KB_CORPUS_ROOT; nothing of them is copied into the repository), and a synthetic one
(bench.synthetic). The command checks what it wrote as `kb check` does."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kb.knowledge.build import check
from kb.knowledge.content import ARTICLE_KEYS
from kb.knowledge.content import slugify as heading_anchor

# ../shared/corpus beside the project's checkout, wherever it is (CI clones elsewhere).
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_ROOT = Path(os.environ.get("KB_CORPUS_ROOT", _BESIDE))
DEMARCHES_SRC = CORPUS_ROOT / "demarches-simplifiees-faq" / "articles"
ALWAYSDATA_SRC = CORPUS_ROOT / "alwaysdata-help-fr" / "articles"


def _require(src: Path) -> None:
    """The public corpus is where the benches look, or a message (not a traceback)."""
    if not Path(src).is_dir():
        raise SystemExit(f"{src}: no such folder. The corpora are in ../shared/corpus beside "
                         "the checkout (or set KB_CORPUS_ROOT).")  # fmt: skip


# What the imported corpora get that their sources lack: each category's folder, French title,
# order and description, and the values the published demarches site fills its templates
# ("%{application_name}": its sources are Rails i18n templates) with. Data: bench/corpora.json.
_DATA = json.loads((Path(__file__).parent / "corpora.json").read_text(encoding="utf-8"))
DEMARCHES_CATEGORIES = _DATA["demarches"]["categories"]  # front matter category: (folder, ...)
DEMARCHES_VARIABLES = _DATA["demarches"]["variables"]
ALWAYSDATA_CATEGORIES = _DATA["alwaysdata"]["categories"]  # top folder: (folder, ...)

Resolver = Callable[[str], str | None]  # a link's destination: its new one, or None (text only)


def slugify(text: str) -> str:
    """ASCII, lowercase, a-z0-9 and single hyphens."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)


def read_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a Markdown file; tolerates a BOM or blank lines before ``---``."""
    text = path.read_text(encoding="utf-8").lstrip("\ufeff")
    stripped = text.lstrip()
    match = _FRONT_MATTER_RE.match(stripped)
    if not match:
        return {}, text
    meta = yaml.safe_load(match.group(1)) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: front matter is not a mapping")
    return meta, stripped[match.end() :]


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_article(path: Path, meta: dict[str, Any], body: str) -> None:
    unknown = set(meta) - set(ARTICLE_KEYS)  # kb's own list: what the importer may write
    if unknown:
        raise ValueError(f"{path}: unknown front matter keys {sorted(unknown)}")
    front = yaml.dump(meta, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}---\n\n{body.strip()}\n", encoding="utf-8")


def write_category(folder: Path, title: str, order: int, description: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"title": title, "order": order, "description": description}
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
    (folder / "_category.yml").write_text(text, encoding="utf-8")


def articles(content_dir: Path) -> list[Path]:
    """The articles' files: folders starting with "_" (canned replies) are no categories."""
    return [p for p in sorted(content_dir.glob("*/*.md")) if not p.parent.name.startswith("_")]


def relative_link(from_folder: str, to_folder: str, slug: str) -> str:
    """Link from an article in ``from_folder`` to ``to_folder/slug.md`` (both category folders)."""
    return f"{slug}.md" if from_folder == to_folder else f"../{to_folder}/{slug}.md"


_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


def split_fences(text: str) -> list[tuple[bool, str]]:
    """Split Markdown into (is_fenced_code, chunk) pieces; fences may be indented (lists)."""
    pieces: list[tuple[bool, str]] = []
    buf: list[str] = []
    fence = ""  # the opening fence while in fenced code
    for line in text.splitlines(keepends=True):
        match = _FENCE_RE.match(line)
        if match and not fence:
            if buf:
                pieces.append((False, "".join(buf)))
            buf, fence = [line], match.group(1)
            continue
        buf.append(line)
        closing = line.strip()
        if match and fence and set(closing) == {fence[0]} and len(closing) >= len(fence):
            pieces.append((True, "".join(buf)))
            buf, fence = [], ""
    if buf:
        pieces.append((bool(fence), "".join(buf)))
    return pieces


_CODE_SPAN_RE = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)
_LABEL = r"\[((?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]"
_DEST = r"\(\s*(<[^>\n]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
_IMAGE_RE = re.compile("!" + _LABEL + _DEST)
_LINK_RE = re.compile(r"(?<![!\\])" + _LABEL + _DEST)
_HTML_IMG_RE = re.compile(r"<img\b[^>]*>", re.I)
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
# Inline HTML kb would show escaped (its Markdown has raw HTML off): keep the text only.
_HTML_INLINE_RE = re.compile(
    r"</?(?:u|em|strong|b|i|s|span|sup|sub|small|mark|kbd|br|p)\b[^<>\n]*>", re.I
)
_SHORTCODE_RE = re.compile(r"\{\{[<%].*?[%>]\}\}|\{%.*?%\}", re.S)
_ADMONITION_RE = re.compile(r"^([ \t]*(?:>[ \t]?)+)\[!([A-Za-z]+)\][ \t]*(.*?)[ \t]*$", re.M)
_ADMONITION_LABELS = {
    "note": "Note", "info": "Information", "tip": "Astuce", "hint": "Astuce",
    "important": "Important", "warning": "Attention", "caution": "Attention", "danger": "Danger",
}  # fmt: skip
_H1_RE = re.compile(r"^# +(?=\S)", re.M)


def _admonition(match: re.Match[str]) -> str:
    prefix, kind, title = match.group(1), match.group(2).lower(), match.group(3)
    label = title.rstrip(" :") or _ADMONITION_LABELS.get(kind, kind.capitalize())
    return f"{prefix.rstrip()} **{label} :**"


def rewrite_markdown(
    body: str, resolve: Resolver, text_hook: Callable[[str], str] | None = None
) -> str:
    """Clean a source body for kb. Outside fenced and inline code: drop shortcodes, HTML
    comments, images and inline HTML tags (their text stays), turn GitHub admonitions into
    blockquotes starting with a bold label, rewrite or unlink links through ``resolve``, drop a
    leading H1 (kb shows the title) and demote the other H1s; ``text_hook`` runs last."""
    out: list[str] = []
    first_text = True
    for is_code, chunk in split_fences(body):
        if is_code:
            out.append(chunk)
            continue
        spans: list[str] = []

        def protect(m: re.Match[str], spans: list[str] = spans) -> str:
            spans.append(m.group(0))
            return f"\x00{len(spans) - 1}\x00"

        text = _CODE_SPAN_RE.sub(protect, chunk)
        text = _SHORTCODE_RE.sub("", text)
        text = _HTML_COMMENT_RE.sub("", text)
        text = _ADMONITION_RE.sub(_admonition, text)
        text = _IMAGE_RE.sub("", text)
        text = _HTML_IMG_RE.sub("", text)
        text = _HTML_INLINE_RE.sub("", text)

        def link(m: re.Match[str]) -> str:
            label, dest = m.group(1), m.group(2).strip("<>")
            if not label.strip():
                return ""
            new = resolve(dest)
            return label if new is None else f"[{label}]({new})"

        text = _LINK_RE.sub(link, text)
        if first_text:
            text = re.sub(r"\A\s*# +[^\n]*\n?", "", text)
        first_text = False
        text = _H1_RE.sub("## ", text)
        if text_hook:
            text = text_hook(text)
        text = re.sub(r"\x00(\d+)\x00", lambda m, spans=spans: spans[int(m.group(1))], text)
        out.append(text)
    result = "".join(out)
    # Lines emptied by the removals (images alone on a line, indented) become blank.
    result = re.sub(r"^[ \t]+$", "", result, flags=re.M)
    result = re.sub(r"\n{3,}", "\n\n", result)
    return result.strip() + "\n"


def external_or_none(dest: str) -> str | None:
    """Absolute URLs and in-page anchors (as kb names headings) kept; else None (plain text)."""
    if dest.startswith("#"):
        return "#" + (heading_anchor(dest[1:]) or "section")
    if re.match(r"(?i)(https?:|mailto:|tel:)", dest):
        return dest
    return None


_VARIABLE_RE = re.compile(r"%\{(\w+)\}")
_DEMARCHES_APP_URL = re.compile(
    r"(?i)^(?:%\{application_base_url\}|https?://(?:www\.)?"
    r"(?:demarches-simplifiees\.fr|demarche\.numerique\.gouv\.fr))"
)


def _demarches_variable(match: re.Match[str]) -> str:
    """A template variable's value, or that of the known one it most looks like."""
    likely = (("mail", "contact_email"), ("url", "application_base_url"), ("", "application_name"))
    name = match.group(1)
    if name not in DEMARCHES_VARIABLES:
        name = next(known for part, known in likely if part in name)
    return DEMARCHES_VARIABLES[name]


def _keywords(value: Any) -> list[str]:
    """The keywords, each once whatever its case, the first spelling kept."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    seen: dict[str, str] = {}
    for word in (re.sub(r"\s+", " ", str(item)).strip() for item in items):
        seen.setdefault(word.lower(), word)
    return [word for word in seen.values() if word]


@dataclass
class _Source:
    path: Path
    category: str  # source category key
    folder: str  # destination category folder
    slug: str
    meta: dict[str, Any]
    body: str


def import_demarches(src: Path, dest: Path) -> int:
    """Import the demarches-simplifiees.fr FAQ (``<category>/<slug>.fr.md``) into ``dest``.

    Slugs come from the front matter, lowercased; a slug used in two categories gets the
    category as a suffix (``quels-sont-les-navigateurs-supportes-usager``).
    """
    _require(src)
    sources: list[_Source] = []
    for path in sorted(src.rglob("*.md")):
        meta, body = read_front_matter(path)
        category = str(meta.get("category") or path.parent.name)
        if category not in DEMARCHES_CATEGORIES:
            raise ValueError(f"{path}: unknown category {category!r}")
        stem = path.name.removesuffix(".md").removesuffix(".fr")
        slug = slugify(str(meta.get("slug") or stem))
        sources.append(_Source(path, category, DEMARCHES_CATEGORIES[category][0], slug, meta, body))

    uses = Counter(s.slug for s in sources)
    for s in sources:
        if uses[s.slug] > 1:
            s.slug = f"{s.slug}-{s.category}"

    # /faq/<category>/<slug> in the app -> the imported article (by front matter slug or name).
    targets: dict[tuple[str, str], _Source] = {}
    for s in sources:
        stem = s.path.name.removesuffix(".md").removesuffix(".fr")
        for key in {str(s.meta.get("slug") or stem), stem, slugify(str(s.meta.get("slug", "")))}:
            targets[(s.category, key.lower())] = s
    titles = {id(s): _VARIABLE_RE.sub(_demarches_variable, str(s.meta["title"])) for s in sources}

    def lookup(path: str) -> _Source | None:
        m = re.match(r"^/faq/([a-z_]+)/([^/?#]+)", path)
        return targets.get((m.group(1), m.group(2).lower())) if m else None

    for folder, title, order, description in DEMARCHES_CATEGORIES.values():
        write_category(dest / folder, title, order, description)

    for s in sources:

        def resolve(target: str, s: _Source = s) -> str | None:
            app = _DEMARCHES_APP_URL.match(target)
            path = target[app.end() :] if app else target
            if app or path.startswith("/"):
                found = lookup(path)
                return relative_link(s.folder, found.folder, found.slug) if found else None
            return external_or_none(target)

        def bare_faq_urls(text: str, s: _Source = s) -> str:
            def repl(m: re.Match[str]) -> str:
                found = lookup(m.group(1))
                if not found:
                    return m.group(0)
                link = relative_link(s.folder, found.folder, found.slug)
                return f"[{titles[id(found)]}]({link})"

            return re.sub(
                r"(?<![(\[])%\{application_base_url\}(/faq/[a-z_]+/[A-Za-z0-9_-]+)/?", repl, text
            )

        body = rewrite_markdown(s.body, resolve, bare_faq_urls)
        body = _VARIABLE_RE.sub(_demarches_variable, body)
        meta: dict[str, Any] = {"title": titles[id(s)], "slug": s.slug}
        keywords = _keywords(s.meta.get("keywords"))
        if keywords:
            meta["keywords"] = keywords
        write_article(dest / s.folder / f"{s.slug}.md", meta, body)
    return len(sources)


def _alwaysdata_slug_parts(rel: PurePosixPath) -> list[str]:
    """Folder path of an article, the article's own name last (``.../name/index.md`` -> name)."""
    parts = list(rel.parts[:-1])
    if rel.name != "index.md":
        parts.append(rel.name.removesuffix(".md"))
    return parts


def _normalize_permalink(url: str) -> str:
    url = re.sub(r"^https?://help\.alwaysdata\.com", "", url.strip(), flags=re.I)
    url = re.split(r"[#?]", url, maxsplit=1)[0]
    return "/" + url.strip("/").lower()


def import_alwaysdata(src: Path, dest: Path) -> int:
    """Import alwaysdata's French help center (Eleventy ``src/content/fr/docs``) into ``dest``.

    Section pages without a body are skipped; the slug is the article's folder (or file)
    name, prefixed by parent folders while it collides with another article's.
    """
    _require(src)
    sources: list[tuple[PurePosixPath, dict[str, Any], str]] = []
    for path in sorted(src.rglob("*.md")):
        rel = PurePosixPath(path.relative_to(src).as_posix())
        meta, body = read_front_matter(path)
        if rel.parts[0] not in ALWAYSDATA_CATEGORIES:
            raise ValueError(f"{path}: unknown top folder {rel.parts[0]!r}")
        # Empty section pages (navigation nodes) and pages with nothing but images/shortcodes.
        if not rewrite_markdown(body, lambda _d: None).strip():
            continue
        sources.append((rel, meta, body))

    parts = {rel: _alwaysdata_slug_parts(rel) for rel, _, _ in sources}
    depth = dict.fromkeys(parts, 1)
    while True:
        slugs = {rel: slugify("-".join(parts[rel][-depth[rel] :])) for rel in parts}
        uses = Counter(slugs.values())
        clashing = [rel for rel in parts if uses[slugs[rel]] > 1]
        if not clashing:
            break
        growing = [rel for rel in clashing if depth[rel] < len(parts[rel])]
        if not growing:
            raise ValueError(f"cannot disambiguate slugs: {clashing}")
        for rel in growing:
            depth[rel] += 1

    folder_of = {rel: ALWAYSDATA_CATEGORIES[rel.parts[0]][0] for rel in parts}
    by_permalink = {_normalize_permalink(str(meta["permalink"])): rel
                    for rel, meta, _ in sources if meta.get("permalink")}  # fmt: skip

    for folder, title, order, description in ALWAYSDATA_CATEGORIES.values():
        write_category(dest / folder, title, order, description)

    for rel, meta, body in sources:

        def resolve(target: str, rel: PurePosixPath = rel) -> str | None:
            if re.match(r"(?i)^(?:https?://help\.alwaysdata\.com)?/", target):
                found = by_permalink.get(_normalize_permalink(target))
                if found is None:
                    return None
                return relative_link(folder_of[rel], folder_of[found], slugs[found])
            return external_or_none(target)

        front = {"title": str(meta["title"]).strip()}
        write_article(
            dest / folder_of[rel] / f"{slugs[rel]}.md", front, rewrite_markdown(body, resolve)
        )
    return len(sources)


def write(name: str, dest: Path, n: int = 5000, seed: int = 0) -> int:
    """Write a corpus (shipped: kb's own content) into `dest`: its number of articles."""
    if name == "shipped":
        shutil.copytree(Path(__file__).resolve().parents[1] / "content", dest)
        return len(articles(dest))
    if name == "demarches":
        return import_demarches(DEMARCHES_SRC, dest)
    if name == "alwaysdata":
        return import_alwaysdata(ALWAYSDATA_SRC, dest)
    from bench.synthetic import generate

    return generate(n, dest, seed)


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        "python -m bench.corpora", description=__doc__, formatter_class=raw
    )
    parser.add_argument("corpus", choices=["demarches", "alwaysdata", "generated"])
    parser.add_argument("dest", type=Path, help="content directory to write")
    parser.add_argument("--n", type=int, default=5000, help="articles to generate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    count = write(args.corpus, args.dest, args.n, args.seed)
    elapsed = time.perf_counter() - start
    print(f"{count} articles written to {args.dest} in {elapsed:.2f} s")
    errors = [p for p in check(args.dest)[1] if not p.warning]  # what kb build would refuse
    for problem in errors:
        print(problem, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
