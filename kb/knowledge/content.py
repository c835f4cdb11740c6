"""content/ -> categories and articles (front matter + Markdown); every problem has path:line."""

from __future__ import annotations

import datetime as dt
import difflib
import errno
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from kb.errors import KbError

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
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the content, as `path:line: message`."""

    path: Path
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        # One problem, one line: control characters from the file are shown escaped.
        message = _CONTROL.sub(lambda m: repr(m[0])[1:-1], self.message)
        return f"{_display(self.path)}:{self.line}: {message}"


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
    """Everything under content/, with the problems found while reading it."""

    root: Path
    categories: list[Category] = field(default_factory=list)
    articles: list[Article] = field(default_factory=list)
    synonyms: list[tuple[str, ...]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return sorted(p for p in self.problems if not p.warning)

    @property
    def warnings(self) -> list[Problem]:
        return sorted(p for p in self.problems if p.warning)

    def by_slug(self) -> dict[str, Article]:
        return {a.slug: a for a in self.articles}

    def by_path(self) -> dict[Path, Article]:
        return {a.path.resolve(): a for a in self.articles}

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)


def slugify(text: str) -> str:
    """ASCII slug of a French title: 'Première connexion' -> 'premiere-connexion'."""
    text = text.replace("œ", "oe").replace("Œ", "Oe").replace("æ", "ae").replace("Æ", "Ae")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def load(root: Path) -> Content:
    """Read every category, article and the synonyms; never raises on bad content."""
    content = Content(root=root)
    if not root.is_dir():
        content.problems.append(Problem(root, 1, "dossier de contenu introuvable"))
        return content
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            _load_category(entry, content)
        elif entry.suffix == ".md" and entry.name.lower() != "readme.md":
            content.problems.append(
                Problem(entry, 1, "article hors catégorie : placez-le dans un dossier de catégorie")
            )
    synonyms = root / SYNONYMS_FILE
    if synonyms.exists():
        content.synonyms = _load_synonyms(synonyms, content.problems)
    content.categories.sort(key=lambda c: (c.order, c.title))
    _cross_check(content)
    return content


def _load_category(folder: Path, content: Content) -> None:
    meta_path = folder / CATEGORY_FILE
    articles = sorted(p for p in folder.iterdir() if p.suffix == ".md" and not p.is_dir())
    if not meta_path.exists():
        content.problems.append(
            Problem(
                folder,
                1,
                f"dossier de catégorie sans {CATEGORY_FILE} : "
                "créez-le avec title, order et description",
            )
        )
        return
    text = _read_text(meta_path, content.problems)
    if text is None:
        return
    parsed = _parse_yaml(text, meta_path, 1, content.problems)
    if parsed is None:
        return
    data, lines = parsed
    check = _Checker(meta_path, lines, content.problems)
    check.unknown_keys(data, CATEGORY_KEYS)
    title = check.string(data, "title", required=True)
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
    for path in articles:
        article = _load_article(path, category.slug, content.problems)
        if article is not None:
            content.articles.append(article)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        content.problems.append(
            Problem(
                sub, 1, "sous-dossier ignoré : les articles se placent à plat dans la catégorie"
            )
        )


def _load_article(path: Path, category: str, problems: list[Problem]) -> Article | None:
    raw = _read_bytes(path, problems)
    if raw is None:
        return None
    text = _decode(raw, path, problems)
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
    parsed = _parse_yaml(header, path, start + 2, problems)
    if parsed is None:
        return None
    data, key_lines = parsed
    check = _Checker(path, key_lines, problems, default_line=start + 1)
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
    if title is None or slug is None:
        return None
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


def _load_synonyms(path: Path, problems: list[Problem]) -> list[tuple[str, ...]]:
    text = _read_text(path, problems)
    if text is None:
        return []
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        problems.append(_yaml_problem(exc, path, 1))
        return []
    except yaml.reader.ReaderError as exc:
        problems.append(_reader_problem(exc, text, path, 1))
        return []
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.append(
            Problem(
                path,
                node.start_mark.line + 1,
                "liste attendue : une ligne « - [mot, synonyme, …] » par groupe",
            )
        )
        return []
    groups: list[tuple[str, ...]] = []
    for item in node.value:
        line = item.start_mark.line + 1
        words: list[str] = []
        if isinstance(item, yaml.SequenceNode):
            values = [v for v in item.value if isinstance(v, yaml.ScalarNode)]
            if len(values) != len(item.value):
                problems.append(Problem(path, line, "un groupe ne contient que des mots"))
                continue
            words = [str(v.value).strip() for v in values]
        elif isinstance(item, yaml.ScalarNode):
            words = [w.strip() for w in str(item.value).split(",")]
        else:
            problems.append(Problem(path, line, "groupe attendu : « - [mot, synonyme, …] »"))
            continue
        words = [w for w in words if w]
        if len(words) < 2:
            problems.append(Problem(path, line, "un groupe de synonymes compte au moins deux mots"))
            continue
        groups.append(tuple(words))
    return groups


def _cross_check(content: Content) -> None:
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
                        f"{what} « {name} » déjà utilisée par {_display(other.path)}"
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
                        f"article lié inconnu « {slug} »{_closest(slug, slugs)}",
                    )
                )
        if article.featured is not None and not article.draft:
            if article.featured in ranks:
                content.problems.append(
                    Problem(
                        article.path,
                        article.line_of("featured"),
                        f"rang featured {article.featured} déjà pris par "
                        f"{_display(ranks[article.featured].path)}",
                    )
                )
            else:
                ranks[article.featured] = article


# --- reading files -------------------------------------------------------------------------


def _read_bytes(path: Path, problems: list[Problem]) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = _OS_ERRORS.get(exc.errno or 0, exc.strerror or str(exc))
        problems.append(Problem(path, 1, f"fichier illisible : {reason}"))
        return None


_OS_ERRORS = {
    errno.ENOENT: "fichier introuvable (lien cassé ?)",
    errno.EACCES: "permission refusée",
    errno.EPERM: "permission refusée",
    errno.EISDIR: "c'est un dossier",
    errno.EIO: "erreur de lecture du disque",
}


def _decode(raw: bytes, path: Path, problems: list[Problem]) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(
                path,
                line,
                f"le fichier n'est pas en UTF-8 (octet 0x{raw[exc.start]:02x}) : "
                "enregistrez-le en UTF-8",
            )
        )
        return None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _read_text(path: Path, problems: list[Problem]) -> str | None:
    raw = _read_bytes(path, problems)
    return None if raw is None else _decode(raw, path, problems)


# PyYAML's problems, by a fragment of their English wording, in French for editors.
_YAML_MESSAGES = (
    ("mapping values are not allowed", "« : » inattendu (mettez la valeur entre guillemets)"),
    ("could not find expected ':'", "« : » attendu après la clé"),
    ("found character '\\t'", "tabulation interdite : indentez avec des espaces"),
    ("found undefined alias", "alias YAML inconnu (« * » en début de valeur : guillemets)"),
    ("expected <block end>", "indentation incohérente"),
    ("did not find expected key", "indentation incohérente ou guillemet non fermé"),
    ("expected ',' or ']'", "crochet « [ » non fermé"),
    ("expected ',' or '}'", "accolade « { » non fermée"),
    ("found unexpected end of stream", "guillemet ou crochet non fermé"),
    ("expected the node content", "valeur manquante ou crochet non fermé"),
    ("found unknown escape character", "antislash « \\ » dans des guillemets : doublez-le"),
    ("that cannot start any token", "caractère interdit en début de valeur : guillemets"),
    ("found duplicate anchor", "ancre YAML en double"),
    ("expected alphabetic or numeric character", "« & » ou « * » en début de valeur : guillemets"),
    ("while scanning a simple key", "« : » attendu après la clé"),
)


class _ImpossibleDate(yaml.constructor.ConstructorError):
    pass


class _Dates(yaml.constructor.SafeConstructor):
    """A date that cannot exist (2026-02-30) is a problem at its line, not a crash."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            problem = f"date impossible « {node.value} » : ce jour ou cette heure n'existe pas"
            raise _ImpossibleDate(None, None, problem, node.start_mark) from None


class _Loader(_Dates, yaml.SafeLoader):
    """PyYAML's own parser, in Python: its messages are the ones _YAML_MESSAGES translates."""


# libyaml's parser, in C (PyYAML's wheels carry it): ten times faster on the headers of
# thousands of articles. A header it refuses is parsed again by _Loader for the message.
class _FastLoader(_Dates, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


for _loader in (_Loader, _FastLoader):
    _loader.add_constructor(
        "tag:yaml.org,2002:timestamp",
        _Dates.construct_yaml_timestamp,  # type: ignore[type-var]  # a SafeConstructor method
    )


def _yaml_problem(exc: yaml.MarkedYAMLError, path: Path, first_line: int) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = first_line + (mark.line if mark else 0)
    detail = f"{exc.context or ''} {exc.problem or ''}"
    message = next(
        (french for fragment, french in _YAML_MESSAGES if fragment in detail),
        f"syntaxe incorrecte ({(exc.problem or 'erreur').strip()})",
    )
    if isinstance(exc, _ImpossibleDate):
        message = exc.problem or message
    return Problem(path, line, f"YAML invalide : {message}")


def _reader_problem(
    exc: yaml.reader.ReaderError, text: str, path: Path, first_line: int
) -> Problem:
    """A character YAML refuses (a control character, say), at its line."""
    line = first_line + text.count("\n", 0, max(0, exc.position))
    character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "inconnu"
    return Problem(path, line, f"YAML invalide : caractère interdit {character}")


def _load(loader_class: type, text: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _parse_yaml(
    text: str, path: Path, first_line: int, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """Parse a YAML mapping, keeping the file line of each key."""
    try:
        try:
            node, data = _load(_FastLoader, text)
        except yaml.YAMLError:
            node, data = _load(_Loader, text)
    except yaml.MarkedYAMLError as exc:
        problems.append(_yaml_problem(exc, path, first_line))
        return None
    except yaml.reader.ReaderError as exc:
        problems.append(_reader_problem(exc, text, path, first_line))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path, first_line, f"YAML invalide : {type(exc).__name__}"))
        return None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        problems.append(
            Problem(path, first_line, "l'en-tête doit être une liste de « clé: valeur »")
        )
        return None
    lines: dict[str, int] = {}
    for key_node, _value in node.value:
        key = str(key_node.value)
        line = first_line + key_node.start_mark.line
        if key in lines:
            problems.append(Problem(path, line, f"clé « {key} » en double (ligne {lines[key]})"))
        lines.setdefault(key, line)
    return {str(k): v for k, v in data.items()}, lines


def _closest(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" : vouliez-vous dire « {match[0]} » ?" if match else ""


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Checker:
    """Type checks of YAML values, each failure a Problem at the key's line."""

    def __init__(
        self, path: Path, lines: dict[str, int], problems: list[Problem], default_line: int = 1
    ) -> None:
        self.path, self.lines, self.problems, self.default_line = (
            path,
            lines,
            problems,
            default_line,
        )

    def line(self, key: str) -> int:
        return self.lines.get(key, self.default_line)

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, self.line(key), message))

    def unknown_keys(self, data: dict[str, Any], known: tuple[str, ...]) -> None:
        for key in data:
            if key not in known:
                hint = _closest(key, known) or f" (clés possibles : {', '.join(known)})"
                self.fail(key, f"clé inconnue « {key} »{hint}")

    def _get(self, data: dict[str, Any], key: str, kind: str, ok: Callable[[Any], bool]) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if not ok(value):
            self.fail(key, f"« {key} » doit être {kind}, pas {_describe(value)}")
            return None
        return value

    def string(self, data: dict[str, Any], key: str, required: bool = False) -> str | None:
        value = self._get(
            data,
            key,
            "un texte",
            lambda v: isinstance(v, str | int | float) and not isinstance(v, bool),
        )
        text = str(value).strip() if value is not None else None
        if required and not text:
            if key in data and data[key] is not None and value is None:
                return None  # wrong type already reported
            self.fail(key, f"« {key} » manquant : chaque fichier doit avoir « {key}: … »")
            return None
        return text

    def integer(
        self, data: dict[str, Any], key: str, low: int | None = None, high: int | None = None
    ) -> int | None:
        kind = "un nombre entier" if low is None else f"un nombre entier de {low} à {high}"
        value = self._get(data, key, kind, lambda v: isinstance(v, int) and not isinstance(v, bool))
        if value is not None and low is not None and high is not None and not low <= value <= high:
            self.fail(key, f"« {key} » doit être {kind}, pas {value}")
            return None
        return cast("int | None", value)

    def boolean(self, data: dict[str, Any], key: str) -> bool | None:
        return cast(
            "bool | None", self._get(data, key, "true ou false", lambda v: isinstance(v, bool))
        )

    def date(self, data: dict[str, Any], key: str) -> dt.date | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.fail(key, f"« {key} » doit être une date AAAA-MM-JJ, pas {_describe(value)}")
        return None

    def slug(self, data: dict[str, Any], key: str) -> str | None:
        value = self.string(data, key)
        if value is not None and not SLUG_RE.match(value):
            self.fail(
                key,
                f"« {key} » invalide « {value} » : minuscules sans accents, chiffres et tirets "
                f"(par exemple « {slugify(value) or 'mon-article'} »)",
            )
            return None
        return value

    def string_list(
        self, data: dict[str, Any], key: str, comma: bool = False, slugs: bool = False
    ) -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, str) and comma:
            items: list[Any] = [v.strip() for v in value.split(",")]
        elif isinstance(value, str) and slugs:
            items = [value]
        elif isinstance(value, list):
            items = value
        else:
            self.fail(key, f"« {key} » doit être une liste, pas {_describe(value)}")
            return []
        result: list[str] = []
        for item in items:
            if not isinstance(item, str | int) or isinstance(item, bool):
                self.fail(key, f"« {key} » ne contient que des textes, pas {_describe(item)}")
                continue
            text = str(item).strip()
            if not text:
                continue
            if slugs and not SLUG_RE.match(text):
                self.fail(key, f"« {key} » : adresse invalide « {text} »")
                continue
            result.append(text)
        return result


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"le booléen {str(value).lower()}"
    if isinstance(value, dict):
        return "une liste de clés"
    if isinstance(value, list):
        return "une liste"
    if isinstance(value, int | float):
        return f"le nombre {value}"
    if isinstance(value, dt.date):
        return f"la date {value.isoformat()}"
    return f"« {value} »"


class ArticleExists(KbError):
    status = 400
    code = "article_existant"


def new_article(root: Path, title: str, category: str, on: dt.date) -> Path:
    """Write a draft article with its front matter; its slug comes from the title."""
    content = load(root)
    if content.category(category) is None:
        known = ", ".join(c.slug for c in content.categories) or "aucune"
        raise ArticleExists(f"catégorie inconnue « {category} » (catégories : {known})")
    title = " ".join(title.split())
    if not title:
        raise ArticleExists("le titre est vide")
    slug = slugify(title)
    if not slug:
        raise ArticleExists(f"impossible de faire une adresse avec le titre « {title} »")
    for article in content.articles:
        if slug == article.slug or slug in article.aliases:
            raise ArticleExists(
                f"l'adresse « {slug} » est déjà prise par {_display(article.path)} : "
                "choisissez un autre titre"
            )
    path = root / category / f"{slug}.md"
    if path.exists():
        raise ArticleExists(f"{_display(path)} existe déjà")
    header = yaml.safe_dump(
        {"title": title, "summary": "", "keywords": [], "updated": on, "draft": True},
        allow_unicode=True,
        sort_keys=False,
    )
    body = (
        "Répondez d'abord à la question en une ou deux phrases.\n\n"
        "## Étapes\n\n1. Première étape.\n2. Deuxième étape.\n"
    )
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(f"---\n{header}---\n{body}")
    return path
