"""kb accounts: provisioning from the command line, CSV imports with file:line messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CSV = (
    "UAI;Établissement;Prénom;Nom;E-mail\n"
    "0750654D;Lycée Louis-le-Grand;Marie;Curie;marie@example.fr\n"
    "1234;Collège B;Paul;Durand;paul@example.fr\n"
    "0750655E;Collège Henri-IV;Jean;Dupont;pas-une-adresse\n"
    "\n"
    "0750655e;Collège Henri-IV;Jean;Dupont;jean@example.fr\n"
    "0750654d;Lycée Louis-le-Grand;Marie;Curie;marie@example.fr\n"
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def outbox_count(data_dir: Path) -> int:
    return len(list((data_dir / "outbox").glob("*.eml"))) if (data_dir / "outbox").exists() else 0


def test_add_an_establishment_sends_its_activation(
    cli: Callable[..., object], data_dir: Path
) -> None:
    result = cli("accounts", "add", "0750654d", "--etablissement", "Lycée Louis-le-Grand",
                 "--prenom", "Marie", "--nom", "Curie", "--email", "Marie@Example.fr")  # fmt: skip
    assert result.status == 0  # type: ignore[attr-defined]
    assert "Compte créé : 0750654D" in result.out  # type: ignore[attr-defined]
    assert "E-mail d'activation envoyé à marie@example.fr." in result.out  # type: ignore[attr-defined]
    assert outbox_count(data_dir) == 1


def test_add_with_a_wrong_uai_says_what_a_uai_is(
    cli: Callable[..., object], data_dir: Path
) -> None:
    result = cli("accounts", "add", "0750654A", "--etablissement", "X", "--prenom", "A",
                 "--nom", "B", "--email", "a@b.fr")  # fmt: skip
    assert result.status == 2  # type: ignore[attr-defined]
    assert "sa lettre de contrôle ne correspond pas" in result.err  # type: ignore[attr-defined]
    assert "Traceback" not in result.err  # type: ignore[attr-defined]


def test_import_reports_bad_rows_keeps_good_ones_and_is_idempotent(
    cli: Callable[..., object], data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "etablissements.csv"
    path.write_text(CSV, encoding="utf-8")
    first = cli("accounts", "import", path)
    assert first.status == 1  # type: ignore[attr-defined]
    assert first.err.splitlines() == [  # type: ignore[attr-defined]
        f"{path}:3: « 1234 » n'est pas un code UAI. Un code UAI compte 7 chiffres suivis d'une lettre, par exemple 0750654D.",
        f"{path}:4: « pas-une-adresse » n'est pas une adresse e-mail valide.",
        f"{path}:7: code UAI 0750654D déjà présent ligne 2",
    ]
    assert "2 compte(s) créé(s), 0 modifié(s), 0 inchangé(s), 3 ligne(s) en erreur." in first.out  # type: ignore[attr-defined]
    assert outbox_count(data_dir) == 2
    again = cli("accounts", "import", path)
    assert "0 compte(s) créé(s), 0 modifié(s), 2 inchangé(s)" in again.out  # type: ignore[attr-defined]
    assert outbox_count(data_dir) == 2  # no second activation mail
    listed = cli("accounts", "list")
    assert "0750654D" in listed.out and "0750655E" in listed.out  # type: ignore[attr-defined]
    assert "2 compte(s)." in listed.out  # type: ignore[attr-defined]


def test_import_accepts_a_spreadsheet_export_in_windows_1252(
    cli: Callable[..., object], data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "uai,etablissement,prenom,nom,email\n0750654D,Lycée Été,Zoé,Noël,z@example.fr\n".encode(
            "cp1252"
        )
    )
    result = cli("accounts", "import", path)
    assert result.status == 0  # type: ignore[attr-defined]
    assert "Lycée Été" in cli("accounts", "list").out  # type: ignore[attr-defined]


def test_import_without_the_expected_columns(
    cli: Callable[..., object], data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("code,nom\n0750654D,X\n", encoding="utf-8")
    result = cli("accounts", "import", path)
    assert result.status == 1  # type: ignore[attr-defined]
    assert f"{path}:1: colonnes attendues : uai, etablissement, prenom, nom, email" in result.err  # type: ignore[attr-defined]


def test_agents_disable_and_invite(cli: Callable[..., object], data_dir: Path) -> None:
    added = cli("accounts", "add-agent", "Sam@CPRO.fr", "--prenom", "Sam", "--nom", "Support")
    assert "Compte créé : sam@cpro.fr" in added.out and "Support" in added.out  # type: ignore[attr-defined]
    invited = cli("accounts", "invite", "sam@cpro.fr")
    assert "E-mail d'activation envoyé à sam@cpro.fr." in invited.out  # type: ignore[attr-defined]
    disabled = cli("accounts", "disable", "sam@cpro.fr")
    assert "Compte désactivé, sessions fermées : sam@cpro.fr" in disabled.out  # type: ignore[attr-defined]
    assert "désactivé" in cli("accounts", "list").out  # type: ignore[attr-defined]
    missing = cli("accounts", "disable", "0750655E")
    assert missing.status == 1 and "aucun compte « 0750655E »" in missing.err  # type: ignore[attr-defined]
