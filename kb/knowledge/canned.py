"""Canned replies ("réponses types"): Markdown files that editors keep in
content/_reponses-types/, checked like articles (`path:line: message`), filled from a ticket."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kb.knowledge import yaml_files
from kb.knowledge.content import Problem

FOLDER = "_reponses-types"
KEYS = ("title", "category", "keywords", "slug")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
FIELDS = {
    "etablissement": "le nom de l'établissement",
    "prenom": "le prénom du contact",
    "reference": "la référence du ticket",
    "echeance": "la date de réponse prévue",
}
MAX_BYTES = 100_000


@dataclass(frozen=True)
class CannedReply:
    slug: str
    title: str
    body: str
    path: Path
    category: str = ""  # offered first on tickets of this category
    keywords: tuple[str, ...] = ()

    def matches(self, query: str) -> bool:
        """Every word of the query is in the title, the keywords or the text (accents aside)."""
        text = PLACEHOLDER.sub(" ", self.body)  # the names of the fields are no words of it
        haystack = _fold(" ".join((self.title, " ".join(self.keywords), text)))
        return all(word in haystack for word in _fold(query).split())


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def load(
    content_dir: Path, articles: Collection[str], categories: Collection[str]
) -> tuple[list[CannedReply], list[Problem]]:
    """Every canned reply of the content, and every problem with them (all at once)."""
    folder = content_dir / FOLDER
    replies: list[CannedReply] = []
    problems: list[Problem] = []
    if not folder.is_dir():
        return replies, problems
    seen: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix != ".md":
            problems.append(Problem(path, 1, "seuls des fichiers .md vont dans ce dossier"))
            continue
        reply = _read(path, articles, categories, problems)
        if reply is None:
            continue
        if reply.slug in seen:
            problems.append(
                Problem(
                    path,
                    1,
                    f"réponse type « {reply.slug} » déjà définie par {seen[reply.slug].name}",
                )
            )
            continue
        seen[reply.slug] = path
        replies.append(reply)
    return sorted(replies, key=lambda r: _fold(r.title)), problems


def _read(
    path: Path, articles: Collection[str], categories: Collection[str], problems: list[Problem]
) -> CannedReply | None:
    try:
        raw = path.read_bytes()[: MAX_BYTES + 1]
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        problems.append(Problem(path, 1, "fichier illisible : enregistrez-le en UTF-8"))
        return None
    except OSError as exc:
        problems.append(Problem(path, 1, f"fichier illisible : {exc.strerror}"))
        return None
    if len(raw) > MAX_BYTES:
        problems.append(Problem(path, 1, f"réponse type trop longue ({MAX_BYTES} octets au plus)"))
        return None
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        problems.append(
            Problem(path, 1, "en-tête manquant : commencez par « --- », « title: … », « --- »")
        )
        return None
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        problems.append(
            Problem(path, 1, "en-tête non fermé : ajoutez une ligne « --- » après l'en-tête")
        )
        return None
    found = len(problems)
    header = _header(path, "\n".join(lines[1:end]), problems)
    if header is None:
        return None
    data, key_lines = header
    for key in data:
        if key not in KEYS:
            problems.append(
                Problem(path, key_lines[key], f"clé inconnue « {key} » : {', '.join(KEYS)}")
            )
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append(
            Problem(
                path,
                key_lines.get("title", 1),
                "« title » est obligatoire : le nom de la réponse type",
            )
        )
    slug = data.get("slug", path.stem)
    if not isinstance(slug, str) or not SLUG.match(slug):
        problems.append(
            Problem(
                path,
                key_lines.get("slug", 1),
                f"adresse invalide « {slug} » : lettres minuscules, chiffres et tirets",
            )
        )
    category = data.get("category", "")
    if category and (not isinstance(category, str) or category not in categories):
        problems.append(
            Problem(
                path,
                key_lines["category"],
                f"catégorie inconnue « {category} » : {', '.join(sorted(categories))}",
            )
        )
    keywords = data.get("keywords", [])
    if isinstance(keywords, str):
        keywords = [k.strip() for k in keywords.split(",") if k.strip()]
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        problems.append(Problem(path, key_lines["keywords"], "« keywords » : une liste de mots"))
        keywords = []
    body = "\n".join(lines[end + 1 :]).strip("\n")
    if not body.strip():
        problems.append(
            Problem(path, end + 1, "réponse type vide : écrivez son texte sous l'en-tête")
        )
    for number, line in enumerate(lines[end + 1 :], start=end + 2):
        for match in PLACEHOLDER.finditer(line):
            problem = _placeholder_problem(match[1].strip(), articles)
            if problem:
                problems.append(Problem(path, number, problem))
    if len(problems) > found:
        return None
    return CannedReply(
        slug=str(slug), title=" ".join(str(title).split()), body=body, path=path,
        category=str(category or ""), keywords=tuple(keywords),
    )  # fmt: skip


def _header(
    path: Path, text: str, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The header's keys and values, and the line of each key in the file (a key written
    twice is a problem: at its second line)."""
    try:
        node, data = yaml_files.load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 2 if mark else 1
        reason = "vérifiez les crochets, les guillemets et la forme « clé: valeur »"
        if isinstance(exc, yaml_files.Unreadable) and exc.problem:
            reason = exc.problem  # a value its tag cannot make, a date that does not exist
        problems.append(Problem(path, line, f"en-tête YAML invalide : {reason}"))
        return None
    except yaml.reader.ReaderError as exc:  # a control character, say: at its line
        problems.append(yaml_files.reader_problem(exc, text, path, 2))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path, 2, f"en-tête YAML invalide : {type(exc).__name__}"))
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode | type(None)):
        problems.append(Problem(path, 2, "l'en-tête doit être une liste de « clé: valeur »"))
        return None
    lines = yaml_files.key_lines(node, path, 2, problems)
    return {str(k): v for k, v in data.items()}, lines


def _placeholder_problem(name: str, articles: Collection[str]) -> str | None:
    if name.startswith("article:"):
        slug = name.removeprefix("article:").strip()
        if slug not in articles:
            return f"article inconnu « {slug} » dans {{{{ {name} }}}}"
        return None
    if name not in FIELDS:
        known = ", ".join(f"{{{{ {f} }}}}" for f in FIELDS)
        return f"champ inconnu {{{{ {name} }}}} : {known}, {{{{ article:adresse }}}}"
    return None


def fill(
    reply: CannedReply, values: Mapping[str, str], article_link: Callable[[str], str | None]
) -> str:
    """The reply's text for one ticket: each {{ champ }} and {{ article:adresse }} replaced."""

    def replace(match: re.Match[str]) -> str:
        name = match[1].strip()
        if name.startswith("article:"):
            return article_link(name.removeprefix("article:").strip()) or match[0]
        return values.get(name, match[0])

    return PLACEHOLDER.sub(replace, reply.body)


class Library:
    """The canned replies as the content folder has them now: read again when a file changes,
    so that editors' commits show up without a restart."""

    def __init__(self, content_dir: Path) -> None:
        self.folder = content_dir / FOLDER
        self.content_dir = content_dir
        self._stamp: tuple[tuple[str, int, int], ...] | None = None  # files, and the articles
        self._replies: list[CannedReply] = []

    def replies(self, articles: Collection[str], categories: Collection[str]) -> list[CannedReply]:
        stamp = (*self._fingerprint(), ("", len(articles), hash(frozenset(articles))))
        if stamp != self._stamp:
            # A file with a problem is left out here; `kb check` says what is wrong with it.
            self._replies, _problems = load(self.content_dir, articles, categories)
            self._stamp = stamp
        return self._replies

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        if not self.folder.is_dir():
            return ()
        entries = []
        for path in sorted(self.folder.iterdir()):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((path.name, stat.st_size, stat.st_mtime_ns))
        return tuple(entries)
