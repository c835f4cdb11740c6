"""Reading content files: bytes, UTF-8, and YAML mappings that keep each key's line."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import yaml

from kb.knowledge.problems import Problem


def read_bytes(path: Path, problems: list[Problem]) -> bytes | None:
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


def decode(raw: bytes, path: Path, problems: list[Problem]) -> str | None:
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


def read_text(path: Path, problems: list[Problem]) -> str | None:
    raw = read_bytes(path, problems)
    return None if raw is None else decode(raw, path, problems)


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
    ("while scanning a quoted scalar", "guillemet ouvert ici et jamais fermé"),
    ("found unexpected end of stream", "guillemet ou crochet non fermé"),
    ("expected the node content", "valeur manquante ou crochet non fermé"),
    ("found unknown escape character", "antislash « \\ » dans des guillemets : doublez-le"),
    ("that cannot start any token", "caractère interdit en début de valeur : guillemets"),
    ("found duplicate anchor", "ancre YAML en double"),
    ("expected alphabetic or numeric character", "« & » ou « * » en début de valeur : guillemets"),
    ("while scanning a simple key", "« : » attendu après la clé"),
)


class Unreadable(yaml.constructor.ConstructorError):
    """A value YAML parsed but cannot make: its problem is said as it is, at its line."""


class _ImpossibleDate(Unreadable):
    pass


class _Dates(yaml.constructor.SafeConstructor):
    """A date that cannot exist (2026-02-30) is a problem at its line, not a crash; so is a
    value that its explicit tag cannot make (`title: !!int x`, `!!bool peut-être`)."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            problem = f"date impossible « {node.value} » : ce jour ou cette heure n'existe pas"
            raise _ImpossibleDate(None, None, problem, node.start_mark) from None

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, OverflowError, AttributeError):
            # PyYAML's constructors trust the tag: int("x"), bool_values["peut-être"]...
            value = node.value if isinstance(node, yaml.ScalarNode) else "…"
            problem = f"« {value} » ne peut pas être lu comme « {node.tag.rpartition(':')[2]} »"
            raise Unreadable(None, None, problem, node.start_mark) from None


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


# Where these start is the fault; where PyYAML noticed it is often lines later.
_OPENED = (
    "while scanning a quoted scalar",
    "while parsing a flow node",
    "while parsing a flow sequence",
    "while parsing a flow mapping",
)


def yaml_problem(exc: yaml.MarkedYAMLError, path: Path, first_line: int, text: str = "") -> Problem:
    opened = exc.context_mark is not None and (exc.context or "") in _OPENED
    mark = exc.context_mark if opened else exc.problem_mark or exc.context_mark
    offset = mark.line if mark else 0
    # Noticed at the end of the text: the fault is on the last line that says something.
    lines = text.split("\n")
    while offset > 0 and (offset >= len(lines) or not lines[offset].strip()):
        offset -= 1
    line = first_line + offset
    detail = f"{exc.context or ''} {exc.problem or ''}"
    message = next(
        (french for fragment, french in _YAML_MESSAGES if fragment in detail),
        f"syntaxe incorrecte ({(exc.problem or 'erreur').strip()})",
    )
    if isinstance(exc, Unreadable):
        message = exc.problem or message
    return Problem(path, line, f"YAML invalide : {message}")


def reader_problem(exc: yaml.reader.ReaderError, text: str, path: Path, first_line: int) -> Problem:
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


def load(text: str) -> tuple[yaml.Node | None, Any]:
    """A YAML document's node (for the lines of its keys) and value (yaml.safe_load's), read
    by libyaml; a document it refuses is read again by PyYAML's parser, whose error is the one
    raised: a MarkedYAMLError at its line, a ReaderError at its character, never a ValueError."""
    try:
        return _load(_FastLoader, text)
    except yaml.YAMLError:
        return _load(_Loader, text)


def parse_yaml(
    text: str, path: Path, first_line: int, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """Parse a YAML mapping, keeping the file line of each key."""
    try:
        node, data = load(text)
    except yaml.MarkedYAMLError as exc:
        problems.append(yaml_problem(exc, path, first_line, text))
        return None
    except yaml.reader.ReaderError as exc:
        problems.append(reader_problem(exc, text, path, first_line))
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
    return {str(k): v for k, v in data.items()}, key_lines(node, path, first_line, problems)


def key_lines(
    node: yaml.MappingNode | None, path: Path, first_line: int, problems: list[Problem]
) -> dict[str, int]:
    """The file line of each key of a mapping (its first); a key written twice is a problem
    at its second line: YAML keeps the last one, and which did the editor mean?"""
    lines: dict[str, int] = {}
    for key_node, _value in node.value if node is not None else []:
        key = str(key_node.value)
        line = first_line + key_node.start_mark.line
        if key in lines:
            problems.append(Problem(path, line, f"clé « {key} » en double (ligne {lines[key]})"))
        lines.setdefault(key, line)
    return lines
