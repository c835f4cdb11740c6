"""Settings: one frozen dataclass, read from KB_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import KbError


class SettingsError(KbError):
    """A setting has a value that cannot be used."""


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


def _proxies(value: str) -> str:
    """Addresses or networks, comma-separated, or '*': what uvicorn's forwarded-allow-ips takes."""
    import ipaddress

    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if item != "*":
            ipaddress.ip_network(item, strict=False)  # ValueError: not an address or a network
    return ",".join(items)


_EXPECTED = {
    _path: "a path",
    _int: "a whole number",
    _bool: "true or false",
    str: "a string",
    _proxies: "IP addresses or networks separated by commas, or *",
}


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
        metadata={"help": "URL SQLAlchemy de la base ; SQLite dans data_dir si vide", "cast": str},
    )
    host: str = field(default="127.0.0.1", metadata={"help": "Adresse d'écoute", "cast": str})
    port: int = field(default=8000, metadata={"help": "Port d'écoute", "cast": _int})
    workers: int = field(default=1, metadata={"help": "Nombre de processus", "cast": _int})
    site_name: str = field(
        default="CPRO éducation — Assistance", metadata={"help": "Nom du site", "cast": str}
    )
    base_url: str = field(
        default="",
        metadata={"help": "Adresse publique du site, pour les liens des e-mails", "cast": str},
    )
    secret_key: str = field(
        default="",
        metadata={
            "help": "Clé de signature des cookies ; à partager entre répliques ; "
            "sinon créée dans data_dir",
            "cast": str,
        },
    )
    smtp_url: str = field(
        default="",
        metadata={
            "help": "smtp://, smtp+starttls:// ou smtps://utilisateur:mdp@hôte:port ; "
            "vide : e-mails écrits dans data_dir/outbox",
            "cast": str,
        },
    )
    mail_from: str = field(
        default="CPRO éducation - Assistance <assistance@cpro-education.fr>",
        metadata={"help": "Expéditeur des e-mails", "cast": str},
    )
    activation_hours: int = field(
        default=72, metadata={"help": "Validité du lien d'activation, en heures", "cast": _int}
    )
    reset_hours: int = field(
        default=2,
        metadata={
            "help": "Validité des liens de mot de passe et d'e-mail, en heures",
            "cast": _int,
        },
    )
    trusted_proxies: str = field(
        default="127.0.0.1",
        metadata={
            "help": "Proxys dont on croit X-Forwarded-For et X-Forwarded-Proto (adresses ou "
            "réseaux, séparés par des virgules)",
            "cast": _proxies,
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
        },
    )
    upload_expiry_hours: int = field(
        default=24,
        metadata={"help": "Durée de vie d'un envoi reprenable inachevé, en heures", "cast": _int},
    )
    max_unfinished_uploads: int = field(
        default=10, metadata={"help": "Envois reprenables inachevés par compte", "cast": _int}
    )
    max_unfinished_bytes: int = field(
        default=12 * 1024**3,
        metadata={"help": "Octets d'envois inachevés par compte", "cast": _int},
    )
    answer_hours: int = field(
        default=72,
        metadata={"help": "Délai de réponse du support, en heures ouvrées", "cast": _int},
    )
    holiday_calendar: str = field(
        default="FR",
        metadata={
            "help": "Jours fériés (holidays) : pays, ou pays-subdivision (FR-57)",
            "cast": str,
        },
    )
    support_email: str = field(
        default="support@cpro-education.fr",
        metadata={"help": "Adresse de l'équipe d'assistance (nouveaux tickets)", "cast": str},
    )
    live_reload: bool = field(
        default=False,
        metadata={"help": "Aperçu : reconstruire et recharger les pages à chaque modification",
                  "cast": _bool},
    )  # fmt: skip
    show_drafts: bool = field(
        default=False, metadata={"help": "Afficher les brouillons (aperçu)", "cast": _bool}
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then KB_* variables, then explicit overrides (CLI flags), in that order."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f"KB_{f.name.upper()}"
            if name in env:
                cast = f.metadata["cast"]
                raw = env[name]
                try:
                    values[f.name] = cast(raw)
                except ValueError:
                    raise SettingsError(f"{name}={raw!r}: expected {_EXPECTED[cast]}") from None
        casts = {f.name: f.metadata["cast"] for f in dataclasses.fields(cls)}
        for name, value in overrides.items():
            if value is not None:
                values[name] = casts[name](value) if isinstance(value, str) else value
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
