"""Reading KB_* variables: casts from text, range checks in French, the unknown names, and how a
value is quoted in a message (never a secret)."""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# KB_* variables that are not settings: the kb command's own switch, and what the test suite
# and the benchmarks read. Any other unknown KB_* name is a typo and stops the start.
OTHER_VARIABLES = frozenset({"KB_DEBUG", "KB_CORPUS_ROOT"})
OTHER_PREFIXES = ("KB_TEST_", "KB_REQUIRE_")


def as_path(value: str) -> Path:
    return Path(value).expanduser()


def as_int(value: str) -> int:
    return int(value.strip())


def as_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on", "oui"}:
        return True
    if lowered in {"0", "false", "no", "off", "non", ""}:
        return False
    raise ValueError(value)


EXPECTED = {
    as_path: "chemin attendu",
    as_int: "nombre entier attendu",
    as_bool: "true ou false attendu",
    str: "texte attendu",
}


# Range checks: each returns what is wrong with a cast value, in French, or None.
Check = Callable[[Any], "str | None"]


def at_least(low: int) -> Check:
    def check(value: int) -> str | None:
        return None if value >= low else f"nombre entier supérieur ou égal à {low} attendu"

    return check


def port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "port entre 1 et 65535 attendu"


def not_empty(value: str) -> str | None:
    return None if value.strip() else "valeur non vide attendue"


def calendar(value: str) -> str | None:
    import holidays

    country, _, subdivision = value.partition("-")
    try:
        holidays.country_holidays(country, subdiv=subdivision or None)
    except (NotImplementedError, KeyError, ValueError):
        return (
            "calendrier inconnu du paquet holidays : un code de pays (FR) "
            "ou pays-subdivision (FR-57) attendu"
        )
    return None


def url_problem(value: str, schemes: tuple[str, ...], what: str) -> str | None:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        return f"{what} invalide"
    if url.scheme not in schemes:
        return f"{what} en {', '.join(s + '://' for s in schemes)} attendue"
    return None


def smtp_url(value: str) -> str | None:
    if not value:
        return None
    problem = url_problem(value, ("smtp", "smtp+starttls", "smtps"), "adresse SMTP")
    if problem is None and not urlsplit(value).hostname:
        problem = "adresse SMTP sans nom d'hôte"
    return problem


def database_url(value: str) -> str | None:
    if not value:
        return None
    schemes = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
    return url_problem(value, schemes, "URL de base de données")


def base_url(value: str) -> str | None:
    if not value:
        return None
    problem = url_problem(value, ("http", "https"), "adresse publique")
    if problem is None and not urlsplit(value).hostname:
        problem = "adresse publique sans nom d'hôte"
    return problem


def email(value: str) -> str | None:
    from email.utils import parseaddr

    address = parseaddr(value)[1]
    local, at, domain = address.rpartition("@")
    return None if at and local and domain else "adresse e-mail attendue"


def proxies(value: str) -> str | None:
    """What uvicorn's forwarded-allow-ips takes: addresses or networks, or '*'."""
    import ipaddress

    for item in (item.strip() for item in value.split(",")):
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return "adresses IP ou réseaux (10.0.0.0/8) séparés par des virgules, ou * attendus"
    return None


def secret_key(value: str) -> str | None:
    if not value or len(value.encode()) >= 32:
        return None
    return (
        "clé d'au moins 32 octets attendue, par exemple celle que donne "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def networks(value: str) -> str | None:
    import ipaddress

    for part in value.replace(",", " ").split():
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            return (
                "adresses IP ou réseaux (10.0.0.0/8) séparés par des virgules attendus ; "
                f"« {part} » n'en est pas un"
            )
    return None


def writable(path: Path) -> str | None:
    """The data dir, created when missing, must take new files."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".kb-write-check-"):
            pass
    except OSError as exc:
        return f"dossier impossible à créer ou sans droit d'écriture ({exc.strerror or exc})"
    return None


def shown(name: str, raw: str, secret: bool) -> str:
    """How a value is quoted in a message: never a secret, never a password."""
    if secret:
        size = len(raw.encode())
        return f"{name} ({size} octet{'s' if size > 1 else ''})"
    try:
        url = urlsplit(raw)
        if url.password:
            raw = raw.replace(f":{url.password}@", ":***@", 1)
    except ValueError:
        pass
    return f"{name}={raw!r}"


def unknown_names(env: Mapping[str, str], known: list[str]) -> list[str]:
    """KB_* names that kb does not read: a typo would otherwise fall back to a default."""
    problems = []
    for name in sorted(env):
        if (
            not name.startswith("KB_")
            or name in known
            or name in OTHER_VARIABLES
            or name.startswith(OTHER_PREFIXES)
        ):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f" : vouliez-vous dire {close[0]} ?" if close else ""
        problems.append(f"{name} : variable inconnue{hint}")
    return problems
