"""Every KB_* value is checked at start: all problems at once, in French, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run

from kb.config import Settings, SettingsError


def problems(env: dict[str, str], **overrides: object) -> list[str]:
    try:
        Settings.from_env(env, **overrides)
    except SettingsError as exc:
        return exc.problems
    raise AssertionError("these settings were accepted")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KB_PORT", "70000", "KB_PORT='70000' : port entre 1 et 65535 attendu"),
        ("KB_PORT", "0", "KB_PORT='0' : port entre 1 et 65535 attendu"),
        ("KB_PORT", "x", "KB_PORT='x' : nombre entier attendu"),
        ("KB_WORKERS", "0", "KB_WORKERS='0' : nombre entier supérieur ou égal à 1 attendu"),
        (
            "KB_MAX_UPLOAD_BYTES",
            "-1",
            "KB_MAX_UPLOAD_BYTES='-1' : nombre entier supérieur ou égal à 1 attendu",
        ),
        (
            "KB_MAX_UNFINISHED_BYTES",
            "0",
            "KB_MAX_UNFINISHED_BYTES='0' : nombre entier supérieur ou égal à 1 attendu",
        ),
        (
            "KB_ANSWER_HOURS",
            "-72",
            "KB_ANSWER_HOURS='-72' : nombre entier supérieur ou égal à 1 attendu",
        ),
        ("KB_SECURE_COOKIES", "peut-être", "KB_SECURE_COOKIES='peut-être' : true ou false attendu"),
        (
            "KB_HOLIDAY_CALENDAR",
            "XX",
            "KB_HOLIDAY_CALENDAR='XX' : calendrier inconnu du paquet holidays : "
            "un code de pays (FR) ou pays-subdivision (FR-57) attendu",
        ),
        (
            "KB_HOLIDAY_CALENDAR",
            "FR-99",
            "KB_HOLIDAY_CALENDAR='FR-99' : calendrier inconnu du paquet holidays : "
            "un code de pays (FR) ou pays-subdivision (FR-57) attendu",
        ),
        (
            "KB_SMTP_URL",
            "ftp://mail.example.fr",
            "KB_SMTP_URL='ftp://mail.example.fr' : adresse SMTP en smtp://, smtp+starttls://, "
            "smtps:// attendue",
        ),
        ("KB_SMTP_URL", "smtp://", "KB_SMTP_URL='smtp://' : adresse SMTP sans nom d'hôte"),
        ("KB_SMTP_URL", "smtp://h:port", "KB_SMTP_URL='smtp://h:port' : adresse SMTP invalide"),
        (
            "KB_DATABASE_URL",
            "mysql://db/kb",
            "KB_DATABASE_URL='mysql://db/kb' : URL de base de données en sqlite://, "
            "postgresql://, postgres://, postgresql+psycopg:// attendue",
        ),
        (
            "KB_BASE_URL",
            "aide.example.fr",
            "KB_BASE_URL='aide.example.fr' : adresse publique en http://, https:// attendue",
        ),
        ("KB_SUPPORT_EMAIL", "support", "KB_SUPPORT_EMAIL='support' : adresse e-mail attendue"),
        ("KB_HOST", " ", "KB_HOST=' ' : valeur non vide attendue"),
    ],
)
def test_a_bad_value_is_named_with_what_is_expected(
    variable: str, value: str, message: str
) -> None:
    assert problems({variable: value}) == [message]


def test_a_short_secret_key_is_refused_without_being_shown() -> None:
    found = problems({"KB_SECRET_KEY": "motdepasse"})
    assert found == [
        "KB_SECRET_KEY (10 octets) : clé d'au moins 32 octets attendue, par exemple celle que "
        "donne python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    ]
    assert "motdepasse" not in found[0]


def test_a_password_in_a_url_is_never_shown() -> None:
    (found,) = problems({"KB_DATABASE_URL": "mysql://kb:s3cr3t@db/kb"})
    assert found.startswith("KB_DATABASE_URL='mysql://kb:***@db/kb' : ")
    (found,) = problems({"KB_SMTP_URL": "ftp://u:hunter2@mail"})
    assert "hunter2" not in found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "KB_PORT": "70000",
            "KB_WORKERS": "0",
            "KB_HOLIDAY_CALENDAR": "XX",
            "KB_SMTP_URL": "ftp://h",
            "KB_SECRET_KEY": "a",
            "KB_DATABSE_URL": "postgresql://db/kb",
        }
    )
    assert [p.split(" ", 1)[0].split("=")[0] for p in found] == [
        "KB_DATABSE_URL",
        "KB_PORT",
        "KB_WORKERS",
        "KB_SECRET_KEY",
        "KB_SMTP_URL",
        "KB_HOLIDAY_CALENDAR",
    ]


def test_an_unknown_name_is_reported_with_the_closest_known_one() -> None:
    assert problems({"KB_DATABSE_URL": "postgresql://db/kb"}) == [
        "KB_DATABSE_URL : variable inconnue : vouliez-vous dire KB_DATABASE_URL ?"
    ]
    assert problems({"KB_PROT": "8080"}) == [
        "KB_PROT : variable inconnue : vouliez-vous dire KB_PORT ?"
    ]
    assert problems({"KB_WHATEVER": "1"}) == ["KB_WHATEVER : variable inconnue"]


def test_variables_that_are_not_settings_are_not_typos() -> None:
    Settings.from_env({"KB_DEBUG": "1", "KB_TEST_POSTGRES_URL": "x", "KB_REQUIRE_POSTGRES": "1"})


def test_good_values_are_accepted(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "KB_PORT": "65535",
            "KB_HOLIDAY_CALENDAR": "FR-57",
            "KB_SMTP_URL": "smtps://assistance%40cpro.fr:p%40ss@mail.example.fr:465?verify=0",
            "KB_DATABASE_URL": "postgresql://kb:pw@db.example.fr:5432/kb",
            "KB_SECRET_KEY": "x" * 32,
            "KB_BASE_URL": "https://aide.example.fr",
            "KB_DATA_DIR": str(tmp_path / "var"),
        },
        writable_data_dir=True,
    )
    assert settings.port == 65535 and settings.holiday_calendar == "FR-57"


def test_the_settings_passed_to_workers_are_accepted_again(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path / "var", secret_key="k" * 40)
    assert Settings.from_env(settings.as_env()) == Settings.from_env(
        {}, data_dir=(tmp_path / "var").resolve(), secret_key="k" * 40,
        content_dir=Path("content").resolve(), index_dir=Path("search_index").resolve(),
    )  # fmt: skip


def test_the_data_dir_is_created_when_missing(tmp_path: Path) -> None:
    Settings.from_env({"KB_DATA_DIR": str(tmp_path / "a" / "b")}, writable_data_dir=True)
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write check leaves nothing


def test_a_data_dir_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fichier").write_text("x")
    where = str(tmp_path / "fichier" / "var")
    assert problems({"KB_DATA_DIR": where}, writable_data_dir=True) == [
        f"KB_DATA_DIR='{where}' : dossier impossible à créer ou sans droit d'écriture "
        "(Not a directory)"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir(mode=0o500)
    (found,) = problems({"KB_DATA_DIR": str(tmp_path / "var")}, writable_data_dir=True)
    assert "sans droit d'écriture (Permission denied)" in found


def test_commands_exit_2_with_every_message(
    cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KB_PORT", "70000")
    monkeypatch.setenv("KB_DATABSE_URL", "postgresql://db/kb")
    result = cli("check")
    assert result.status == 2
    assert result.err.splitlines() == [
        "kb: KB_DATABSE_URL : variable inconnue : vouliez-vous dire KB_DATABASE_URL ?",
        "kb: KB_PORT='70000' : port entre 1 et 65535 attendu",
    ]


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"], ["accounts", "list"]])
def test_kb_serve_and_database_commands_refuse_bad_settings(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "fichier").write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        KB_PORT="70000",
        KB_WORKERS="0",
        KB_HOLIDAY_CALENDAR="XX",
        KB_DATA_DIR=str(tmp_path / "fichier" / "var"),
        KB_SECRET_KEY="a",
        KB_MAX_UPLOAD_BYTES="-1",
        KB_SMTP_URL="ftp://mail.example.fr",
    )
    result = subprocess.run(
        [sys.executable, "-m", "kb.cli", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 7 and all(line.startswith("kb: KB_") for line in lines)
    assert not (tmp_path / "var").exists()  # nothing started, nothing written
