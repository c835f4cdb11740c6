"""`kb mv`: an article renamed or moved to another category, its old address kept as an alias,
and every link and `related` that named it rewritten, so no reader meets a broken link."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kb.errors import KbError
from kb.knowledge.content import Article, Content, load
from kb.knowledge.problems import display
from kb.knowledge.slugs import SLUG_RE, slugify


class MoveRefused(KbError):
    status = 400
    code = "deplacement_refuse"


@dataclass(frozen=True)
class Move:
    """What `kb mv` did: the new file, the slugs, and the other files it rewrote."""

    old_path: Path
    new_path: Path
    old_slug: str
    new_slug: str
    rewritten: tuple[Path, ...]


# An inline link's destination, and a reference definition's: `](x.md#a)`, `[x]: x.md`.
_INLINE = re.compile(r"(\]\(\s*<?)([^)\s>]+)")
_REFERENCE = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s*<?)(\S+?)(?=>?(\s|$))", re.MULTILINE)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def move_article(root: Path, source: str, destination: str) -> Move:
    """Move or rename one article; refuses, changing nothing, when anything would clash."""
    content = load(root)
    article = _find(content, source)
    new_path = _destination(content, article, destination)
    new_slug = article.slug if new_path.stem == article.path.stem else new_path.stem
    if new_path.resolve() == article.path.resolve():
        raise MoveRefused(f"{display(article.path)} est déjà à cet endroit")
    if new_path.exists():
        raise MoveRefused(f"{display(new_path)} existe déjà")
    if not SLUG_RE.match(new_slug):
        raise MoveRefused(
            f"nom de fichier invalide pour une adresse « {new_path.name} » : "
            f"par exemple « {slugify(new_path.stem) or 'article'}.md »"
        )
    for other in content.articles:
        if other is not article and new_slug in (other.slug, *other.aliases):
            raise MoveRefused(f"l'adresse « {new_slug} » est déjà prise par {display(other.path)}")

    writes: dict[Path, str] = {}
    old_abs, new_abs = article.path.resolve(), new_path.resolve()
    for path in sorted(root.rglob("*.md")):
        if path.resolve() == old_abs:
            continue
        text = path.read_text(encoding="utf-8")
        changed = _rewrite_links(text, path.parent, path.parent, old_abs, new_abs)
        if new_slug != article.slug:
            changed = _rename_related(changed, article.slug, new_slug)
        if changed != text:
            writes[path] = changed
    own = article.path.read_text(encoding="utf-8")
    own = _rewrite_links(own, article.path.parent, new_path.parent, old_abs, new_abs)
    if new_slug != article.slug:
        own = _renamed_header(own, article, new_slug)
    new_path.parent.mkdir(parents=True, exist_ok=True)
    with open(new_path, "x", encoding="utf-8") as handle:
        handle.write(own)
    for path, text in writes.items():
        temporary = path.with_name(f".{path.name}.kb-mv")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    article.path.unlink()
    return Move(article.path, new_path, article.slug, new_slug, tuple(writes))


def _find(content: Content, source: str) -> Article:
    wanted = Path(source)
    for candidate in (wanted, content.root / wanted):
        if candidate.suffix == ".md" and candidate.exists():
            found = content.by_path().get(candidate.resolve())
            if found is None:
                raise MoveRefused(
                    f"{display(candidate)} ne se lit pas comme un article : "
                    "corrigez-le d'abord (kb check)"
                )
            return found
    for article in content.articles:
        if source in (article.slug, *article.aliases):
            return article
    raise MoveRefused(f"article introuvable « {source} » : donnez son fichier .md ou son slug")


def _destination(content: Content, article: Article, destination: str) -> Path:
    """`categorie/nom.md`, `categorie` (same file name) or `nouveau-nom` (same category)."""
    path = Path(destination.rstrip("/") or ".")
    root = content.root.resolve()
    categories = {c.slug for c in content.categories}
    # A path through the content folder (content/abonnement/x.md) is taken from its root.
    if path.parts[0] not in categories and path.resolve().is_relative_to(root):
        path = path.resolve().relative_to(root)
    if path.suffix == ".md":
        if len(path.parts) == 1:
            return article.path.parent / path.name
        if len(path.parts) == 2 and path.parts[0] in categories:
            return content.root / path
    elif len(path.parts) == 1 and path.name in categories:
        return content.root / path.name / article.path.name
    elif len(path.parts) == 1 and path.name not in categories:
        if SLUG_RE.match(path.name):
            return article.path.parent / f"{path.name}.md"
        raise MoveRefused(
            f"« {destination} » n'est ni une catégorie ({', '.join(sorted(categories))}) "
            f"ni un nom d'article valide (par exemple « {slugify(path.name) or 'article'} »)"
        )
    raise MoveRefused(
        f"destination « {destination} » : écrivez « catégorie/nom.md », une catégorie "
        f"({', '.join(sorted(categories))}) ou un nouveau nom"
    )


def _rewrite_links(text: str, was_in: Path, now_in: Path, old: Path, new: Path) -> str:
    """Every relative link of this file, written from its new folder; links to the moved
    article point to its new file. Fenced code is left as written."""

    def fix(match: re.Match[str]) -> str:
        href = match.group(2)
        target, hash_, fragment = href.partition("#")
        if not target.endswith(".md") or "://" in target or target.startswith("/"):
            return match.group(0)
        resolved = (was_in / target).resolve()
        if resolved == old:
            resolved = new
        elif was_in == now_in:
            return match.group(0)
        relative = Path(os.path.relpath(resolved, now_in.resolve())).as_posix()
        return match.group(1) + relative + hash_ + fragment

    out: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced:
            line = _REFERENCE.sub(fix, _INLINE.sub(fix, line))
        out.append(line)
    return "\n".join(out)


def _header_span(text: str) -> tuple[int, int] | None:
    """Line numbers (0-based) of the opening and closing `---` of the header."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or lines[start].rstrip() != "---":
        return None
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].rstrip() in ("---", "...")), None
    )
    return None if end is None else (start, end)


def _set_list(text: str, key: str, update: list[str] | None, replace: dict[str, str]) -> str:
    """The header's `key` list, with names replaced and `update` appended (a key added when
    missing), written back in the style it had (block or flow)."""
    span = _header_span(text)
    if span is None:
        return text
    start, end = span
    lines = text.split("\n")
    node = yaml.compose("\n".join(lines[start + 1 : end]))
    if not isinstance(node, yaml.MappingNode):
        return text
    for key_node, value in node.value:
        if key_node.value != key:
            continue
        first = start + 1 + key_node.start_mark.line
        last = start + 1 + value.end_mark.line - (1 if value.end_mark.column == 0 else 0)
        if isinstance(value, yaml.SequenceNode):
            items = [str(v.value) for v in value.value if isinstance(v, yaml.ScalarNode)]
            flow = value.flow_style
        else:
            items = [s.strip() for s in str(value.value).split(",") if s.strip()]
            flow = True
        renamed = [replace.get(item, item) for item in items]
        renamed += [u for u in update or [] if u not in renamed]
        renamed = list(dict.fromkeys(renamed))
        if renamed == items:
            return text
        lines[first : last + 1] = _written(key, renamed, flow)
        return "\n".join(lines)
    if update:
        lines[end:end] = _written(key, update, False)
    return "\n".join(lines)


def _written(key: str, items: list[str], flow: bool) -> list[str]:
    if flow:
        return [f"{key}: [{', '.join(items)}]"]
    return [f"{key}:", *(f"  - {item}" for item in items)]


def _rename_related(text: str, old: str, new: str) -> str:
    return _set_list(text, "related", None, {old: new})


def _renamed_header(text: str, article: Article, new_slug: str) -> str:
    """The old slug becomes an alias (the new one stops being one); an explicit `slug:` follows."""
    if "slug" in article.key_lines:  # first: the lines below it may move
        lines = text.split("\n")
        index = article.key_lines["slug"] - 1
        if lines[index].startswith("slug:"):
            lines[index] = f"slug: {new_slug}"
        text = "\n".join(lines)
    text = _set_list(text, "aliases", [article.slug], {new_slug: article.slug})
    return _rename_related(text, article.slug, new_slug)
