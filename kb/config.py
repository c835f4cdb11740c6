"""Settings: one frozen dataclass, read from KB_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kb.errors import KbError

# KB_* variables that are not settings: the kb command's own switch, and what the test suite
# and the benchmarks read. Any other unknown KB_* name is a typo and stops the start.
OTHER_VARIABLES = frozenset({"KB_DEBUG", "KB_CORPUS_ROOT"})
OTHER_PREFIXES = ("KB_TEST_", "KB_REQUIRE_")


class SettingsError(KbError):
    """Settings that cannot be used: every problem, one per line."""

    status = 400  # the command line's usage errors: exit status 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _path(value: str) -> Path:
    return Path(value).expanduser()


def _int(value: str) -> int:
    return int(value.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on", "oui"}:
        return True
    if lowered in {"0", "false", "no", "off", "non", ""}:
        return False
    raise ValueError(value)


_EXPECTED = {
    _path: "chemin attendu",
    _int: "nombre entier attendu",
    _bool: "true ou false attendu",
    str: "texte attendu",
}


# Range checks: each returns what is wrong with a cast value, in French, or None.
Check = Callable[[Any], "str | None"]


def _at_least(low: int) -> Check:
    def check(value: int) -> str | None:
        return None if value >= low else f"nombre entier supérieur ou égal à {low} attendu"

    return check


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "port entre 1 et 65535 attendu"


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "valeur non vide attendue"


def _calendar(value: str) -> str | None:
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


def _url(value: str, schemes: tuple[str, ...], what: str) -> str | None:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        return f"{what} invalide"
    if url.scheme not in schemes:
        return f"{what} en {', '.join(s + '://' for s in schemes)} attendue"
    return None


def _smtp_url(value: str) -> str | None:
    if not value:
        return None
    problem = _url(value, ("smtp", "smtp+starttls", "smtps"), "adresse SMTP")
    if problem is None and not urlsplit(value).hostname:
        problem = "adresse SMTP sans nom d'hôte"
    return problem


def _database_url(value: str) -> str | None:
    if not value:
        return None
    schemes = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
    return _url(value, schemes, "URL de base de données")


def _base_url(value: str) -> str | None:
    if not value:
        return None
    problem = _url(value, ("http", "https"), "adresse publique")
    if problem is None and not urlsplit(value).hostname:
        problem = "adresse publique sans nom d'hôte"
    return problem


def _email(value: str) -> str | None:
    from email.utils import parseaddr

    address = parseaddr(value)[1]
    local, at, domain = address.rpartition("@")
    return None if at and local and domain else "adresse e-mail attendue"


def _proxies(value: str) -> str | None:
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


def _secret_key(value: str) -> str | None:
    if not value or len(value.encode()) >= 32:
        return None
    return (
        "clé d'au moins 32 octets attendue, par exemple celle que donne "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def _networks(value: str) -> str | None:
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


def _writable(path: Path) -> str | None:
    """The data dir, created when missing, must take new files."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".kb-write-check-"):
            pass
    except OSError as exc:
        return f"dossier impossible à créer ou sans droit d'écriture ({exc.strerror or exc})"
    return None


def _shown(name: str, raw: str, secret: bool) -> str:
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


@dataclass(frozen=True)
class Settings:
    """Everything kb can be told; each field maps to KB_<NAME> in the environment."""

    content_dir: Path = field(
        default=Path("content"), metadata={"help": "Dossier des articles Markdown", "cast": _path}
    )
    index_dir: Path = field(
        default=Path("search_index"), metadata={"help": "Dossier de l'index Whoosh", "cast": _path}
    )
    data_dir: Path = field(
        default=Path("var"),
        metadata={"help": "Dossier des données (base SQLite, pièces jointes)", "cast": _path},
    )
    database_url: str = field(
        default="",
        metadata={
            "help": "URL SQLAlchemy de la base ; SQLite dans data_dir si vide",
            "cast": str,
            "check": _database_url,
        },
    )
    shutdown_seconds: int = field(
        default=30,
        metadata={
            "help": "Arrêt : attente maximale des requêtes en cours (envois compris), en "
            "secondes ; un envoi reprenable interrompu reprend sur une autre réplique",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    content_check_seconds: int = field(
        default=10,
        metadata={
            "help": "Intervalle de vérification du contenu : une nouvelle version est "
            "construite en arrière-plan (0 : jamais, kb build seulement)",
            "cast": _int,
            "check": _at_least(0),
        },
    )
    db_connect_timeout: int = field(
        default=5,
        metadata={
            "help": "PostgreSQL : délai de connexion, en secondes",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    db_statement_timeout: int = field(
        default=10,
        metadata={
            "help": "PostgreSQL : durée maximale d'une requête, en secondes (0 : sans limite)",
            "cast": _int,
            "check": _at_least(0),
        },
    )
    db_pool_timeout: int = field(
        default=5,
        metadata={
            "help": "Attente d'une connexion libre du pool, en secondes",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    host: str = field(
        default="127.0.0.1", metadata={"help": "Adresse d'écoute", "cast": str, "check": _not_empty}
    )
    port: int = field(
        default=8000, metadata={"help": "Port d'écoute", "cast": _int, "check": _port}
    )
    workers: int = field(
        default=1, metadata={"help": "Nombre de processus", "cast": _int, "check": _at_least(1)}
    )
    site_name: str = field(
        default="CPRO éducation — Assistance",
        metadata={"help": "Nom du site", "cast": str, "check": _not_empty},
    )
    base_url: str = field(
        default="",
        metadata={
            "help": "Adresse publique du site, pour les liens des e-mails",
            "cast": str,
            "check": _base_url,
        },
    )
    secret_key: str = field(
        default="",
        metadata={
            "help": "Clé de signature des cookies, 32 octets ou plus ; à partager entre "
            "répliques ; sinon créée dans data_dir",
            "secret": True,
            "cast": str,
            "check": _secret_key,
        },
    )
    smtp_url: str = field(
        default="",
        metadata={
            "help": "smtp://, smtp+starttls:// ou smtps://utilisateur:mdp@hôte:port ; "
            "vide : e-mails écrits dans data_dir/outbox",
            "cast": str,
            "check": _smtp_url,
        },
    )
    mail_from: str = field(
        default="CPRO éducation - Assistance <assistance@cpro-education.fr>",
        metadata={"help": "Expéditeur des e-mails", "cast": str, "check": _email},
    )
    mail_retry_seconds: int = field(
        default=30,
        metadata={
            "help": "Premier délai avant de réessayer un e-mail non envoyé, doublé à chaque "
            "essai (une heure au plus)",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    mail_give_up_hours: int = field(
        default=48,
        metadata={
            "help": "Un e-mail qui n'a pas pu partir pendant ce temps est abandonné "
            "(et signalé au support)",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    activation_hours: int = field(
        default=72,
        metadata={
            "help": "Validité du lien d'activation, en heures",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    reset_hours: int = field(
        default=2,
        metadata={
            "help": "Validité des liens de mot de passe et d'e-mail, en heures",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    trusted_proxies: str = field(
        default="127.0.0.1",
        metadata={
            "help": "Proxys dont on croit X-Forwarded-For et X-Forwarded-Proto (adresses ou "
            "réseaux, séparés par des virgules)",
            "cast": str,
            "check": _proxies,
        },
    )
    secure_cookies: bool = field(
        default=False,
        metadata={
            "help": "Cookies Secure même sans HTTPS détecté (derrière un proxy)",
            "cast": _bool,
        },
    )
    max_upload_bytes: int = field(
        default=6 * 1024**3,
        metadata={
            "help": "Taille maximale des pièces jointes d'un message, en octets",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    upload_expiry_hours: int = field(
        default=24,
        metadata={
            "help": "Durée de vie d'un envoi reprenable inachevé, en heures",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    max_unfinished_uploads: int = field(
        default=10,
        metadata={
            "help": "Envois reprenables inachevés par compte",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    max_unfinished_bytes: int = field(
        default=12 * 1024**3,
        metadata={
            "help": "Octets d'envois inachevés par compte",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    lease_seconds: int = field(
        default=120,
        metadata={
            "help": "Bail d'un processus sur ses envois en cours, renouvelé en base ; à son "
            "expiration, ce qu'un processus arrêté a laissé est supprimé",
            "cast": _int,
            "check": _at_least(2),
        },
    )
    answer_hours: int = field(
        default=72,
        metadata={
            "help": "Délai de réponse du support, en heures ouvrées",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    close_after_days: int = field(
        default=5,
        metadata={
            "help": "Un ticket résolu et non rouvert est fermé après ce nombre de jours ouvrés",
            "cast": _int,
            "check": _at_least(1),
        },
    )
    holiday_calendar: str = field(
        default="FR",
        metadata={
            "help": "Jours fériés (holidays) : pays, ou pays-subdivision (FR-57)",
            "cast": str,
            "check": _calendar,
        },
    )
    support_email: str = field(
        default="support@cpro-education.fr",
        metadata={
            "help": "Adresse de l'équipe d'assistance (nouveaux tickets)",
            "cast": str,
            "check": _email,
        },
    )
    live_reload: bool = field(
        default=False,
        metadata={"help": "Aperçu : reconstruire et recharger les pages à chaque modification",
                  "cast": _bool},
    )  # fmt: skip
    metrics_allow: str = field(
        default="127.0.0.0/8, ::1",
        metadata={
            "help": "Adresses ou réseaux qui peuvent lire /metrics, séparés par des virgules",
            "cast": str,
            "check": _networks,
        },
    )
    show_drafts: bool = field(
        default=False, metadata={"help": "Afficher les brouillons (aperçu)", "cast": _bool}
    )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        writable_data_dir: bool = False,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then KB_* variables, then explicit overrides (CLI flags), in that order;
        every problem reported at once. `writable_data_dir`: the data dir must exist (it is created)
        and take new files, for what uses it."""
        env = os.environ if env is None else env
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        raws: dict[str, str] = {}
        problems = _unknown_names(env)
        for f in fields.values():
            name = f"KB_{f.name.upper()}"
            if name in env:
                cast, raw = f.metadata["cast"], env[name]
                try:
                    values[f.name], raws[f.name] = cast(raw), raw
                except ValueError:
                    shown = _shown(name, raw, f.metadata.get("secret", False))
                    problems.append(f"{shown} : {_EXPECTED[cast]}")
        for key, value in overrides.items():
            if value is not None:
                cast = fields[key].metadata["cast"]
                values[key] = cast(value) if isinstance(value, str) else value
                raws[key] = str(value)
        for key, value in values.items():
            check = fields[key].metadata.get("check")
            problem = check(value) if check else None
            if problem:
                shown = _shown(
                    f"KB_{key.upper()}", raws[key], fields[key].metadata.get("secret", False)
                )
                problems.append(f"{shown} : {problem}")
        if writable_data_dir:
            where = values.get("data_dir", fields["data_dir"].default)
            problem = _writable(where)
            if problem:
                problems.append(f"KB_DATA_DIR={str(where)!r} : {problem}")
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """These settings as KB_* variables, for processes that read them again."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = value.resolve()
            elif isinstance(value, bool):
                value = "1" if value else "0"
            env[f"KB_{f.name.upper()}"] = str(value)
        return env

    @property
    def database(self) -> str:
        """The SQLAlchemy URL in force: KB_DATABASE_URL, else SQLite in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'kb.sqlite3').resolve()}"


def _unknown_names(env: Mapping[str, str]) -> list[str]:
    """KB_* names that kb does not read: a typo would otherwise fall back to a default."""
    known = sorted(f"KB_{f.name.upper()}" for f in dataclasses.fields(Settings))
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
