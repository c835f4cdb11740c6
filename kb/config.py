"""Settings: one frozen dataclass, read from KB_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb import config_checks as checks
from kb.errors import KbError


class SettingsError(KbError):
    """Settings that cannot be used: every problem, one per line."""

    status = 400  # the command line's usage errors: exit status 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Everything kb can be told; each field maps to KB_<NAME> in the environment."""

    content_dir: Path = field(
        default=Path("content"),
        metadata={"help": "Dossier des articles Markdown", "cast": checks.as_path},
    )
    index_dir: Path = field(
        default=Path("search_index"),
        metadata={"help": "Dossier de l'index Whoosh", "cast": checks.as_path},
    )
    data_dir: Path = field(
        default=Path("var"),
        metadata={
            "help": "Dossier des données (base SQLite, pièces jointes)",
            "cast": checks.as_path,
        },
    )
    database_url: str = field(
        default="",
        metadata={
            "help": "URL SQLAlchemy de la base ; SQLite dans data_dir si vide",
            "cast": str,
            "check": checks.database_url,
        },
    )
    shutdown_seconds: int = field(
        default=30,
        metadata={
            "help": "Arrêt : attente maximale des requêtes en cours (envois compris), en "
            "secondes ; un envoi reprenable interrompu reprend sur une autre réplique",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    content_check_seconds: int = field(
        default=10,
        metadata={
            "help": "Intervalle de vérification du contenu : une nouvelle version est "
            "construite en arrière-plan (0 : jamais, kb build seulement)",
            "cast": checks.as_int,
            "check": checks.at_least(0),
        },
    )
    db_connect_timeout: int = field(
        default=5,
        metadata={
            "help": "PostgreSQL : délai de connexion, en secondes",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    db_statement_timeout: int = field(
        default=10,
        metadata={
            "help": "PostgreSQL : durée maximale d'une requête, en secondes (0 : sans limite)",
            "cast": checks.as_int,
            "check": checks.at_least(0),
        },
    )
    db_pool_timeout: int = field(
        default=5,
        metadata={
            "help": "Attente d'une connexion libre du pool, en secondes",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    host: str = field(
        default="127.0.0.1",
        metadata={"help": "Adresse d'écoute", "cast": str, "check": checks.not_empty},
    )
    port: int = field(
        default=8000,
        metadata={"help": "Port d'écoute", "cast": checks.as_int, "check": checks.port},
    )
    workers: int = field(
        default=1,
        metadata={
            "help": "Nombre de processus",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    site_name: str = field(
        default="CPRO éducation — Assistance",
        metadata={"help": "Nom du site", "cast": str, "check": checks.not_empty},
    )
    base_url: str = field(
        default="",
        metadata={
            "help": "Adresse publique du site, pour les liens des e-mails",
            "cast": str,
            "check": checks.base_url,
        },
    )
    secret_key: str = field(
        default="",
        metadata={
            "help": "Clé de signature des cookies, 32 octets ou plus ; à partager entre "
            "répliques ; sinon créée dans data_dir",
            "secret": True,
            "cast": str,
            "check": checks.secret_key,
        },
    )
    smtp_url: str = field(
        default="",
        metadata={
            "help": "smtp://, smtp+starttls:// ou smtps://utilisateur:mdp@hôte:port ; "
            "vide : e-mails écrits dans data_dir/outbox",
            "cast": str,
            "check": checks.smtp_url,
        },
    )
    mail_from: str = field(
        default="CPRO éducation - Assistance <assistance@cpro-education.fr>",
        metadata={"help": "Expéditeur des e-mails", "cast": str, "check": checks.email},
    )
    mail_retry_seconds: int = field(
        default=30,
        metadata={
            "help": "Premier délai avant de réessayer un e-mail non envoyé, doublé à chaque "
            "essai (une heure au plus)",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    mail_give_up_hours: int = field(
        default=48,
        metadata={
            "help": "Un e-mail qui n'a pas pu partir pendant ce temps est abandonné "
            "(et signalé au support)",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    activation_hours: int = field(
        default=72,
        metadata={
            "help": "Validité du lien d'activation, en heures",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    reset_hours: int = field(
        default=2,
        metadata={
            "help": "Validité des liens de mot de passe et d'e-mail, en heures",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    trusted_proxies: str = field(
        default="127.0.0.1",
        metadata={
            "help": "Proxys dont on croit X-Forwarded-For et X-Forwarded-Proto (adresses ou "
            "réseaux, séparés par des virgules)",
            "cast": str,
            "check": checks.proxies,
        },
    )
    secure_cookies: bool = field(
        default=False,
        metadata={
            "help": "Cookies Secure même sans HTTPS détecté (derrière un proxy)",
            "cast": checks.as_bool,
        },
    )
    max_upload_bytes: int = field(
        default=6 * 1024**3,
        metadata={
            "help": "Taille maximale des pièces jointes d'un message, en octets",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    upload_expiry_hours: int = field(
        default=24,
        metadata={
            "help": "Durée de vie d'un envoi reprenable inachevé, en heures",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    max_unfinished_uploads: int = field(
        default=10,
        metadata={
            "help": "Envois reprenables inachevés par compte",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    max_unfinished_bytes: int = field(
        default=12 * 1024**3,
        metadata={
            "help": "Octets d'envois inachevés par compte",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    lease_seconds: int = field(
        default=120,
        metadata={
            "help": "Bail d'un processus sur ses envois en cours, renouvelé en base ; à son "
            "expiration, ce qu'un processus arrêté a laissé est supprimé",
            "cast": checks.as_int,
            "check": checks.at_least(2),
        },
    )
    answer_hours: int = field(
        default=72,
        metadata={
            "help": "Délai de réponse du support, en heures ouvrées",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    close_after_days: int = field(
        default=5,
        metadata={
            "help": "Un ticket résolu et non rouvert est fermé après ce nombre de jours ouvrés",
            "cast": checks.as_int,
            "check": checks.at_least(1),
        },
    )
    holiday_calendar: str = field(
        default="FR",
        metadata={
            "help": "Jours fériés (holidays) : pays, ou pays-subdivision (FR-57)",
            "cast": str,
            "check": checks.calendar,
        },
    )
    support_email: str = field(
        default="support@cpro-education.fr",
        metadata={
            "help": "Adresse de l'équipe d'assistance (nouveaux tickets)",
            "cast": str,
            "check": checks.email,
        },
    )
    live_reload: bool = field(
        default=False,
        metadata={"help": "Aperçu : reconstruire et recharger les pages à chaque modification",
                  "cast": checks.as_bool},
    )  # fmt: skip
    metrics_allow: str = field(
        default="127.0.0.0/8, ::1",
        metadata={
            "help": "Adresses ou réseaux qui peuvent lire /metrics, séparés par des virgules",
            "cast": str,
            "check": checks.networks,
        },
    )
    show_drafts: bool = field(
        default=False, metadata={"help": "Afficher les brouillons (aperçu)", "cast": checks.as_bool}
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
        known = sorted(f"KB_{name.upper()}" for name in fields)
        problems = checks.unknown_names(env, known)
        for f in fields.values():
            name = f"KB_{f.name.upper()}"
            if name in env:
                cast, raw = f.metadata["cast"], env[name]
                try:
                    values[f.name], raws[f.name] = cast(raw), raw
                except ValueError:
                    shown = checks.shown(name, raw, f.metadata.get("secret", False))
                    problems.append(f"{shown} : {checks.EXPECTED[cast]}")
        for key, value in overrides.items():
            if value is not None:
                cast = fields[key].metadata["cast"]
                values[key] = cast(value) if isinstance(value, str) else value
                raws[key] = str(value)
        for key, value in values.items():
            check = fields[key].metadata.get("check")
            problem = check(value) if check else None
            if problem:
                shown = checks.shown(
                    f"KB_{key.upper()}", raws[key], fields[key].metadata.get("secret", False)
                )
                problems.append(f"{shown} : {problem}")
        if writable_data_dir:
            where = values.get("data_dir", fields["data_dir"].default)
            problem = checks.writable(where)
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
