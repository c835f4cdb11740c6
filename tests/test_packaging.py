"""The wheel carries every package, template and static file (.ci/wheel-check serves from it)."""

from __future__ import annotations

import tomllib

from conftest import ROOT

from kb.web import app

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_folder_of_kb_is_a_package_of_the_wheel() -> None:
    folders = {
        ".".join(path.relative_to(ROOT).parts)
        for path in (ROOT / "kb").rglob("*")
        if path.is_dir() and path.name != "__pycache__" and any(path.iterdir())
    }
    assert folders | {"kb", "kb.templates", "kb.accessibilite"} == set(SETUPTOOLS["packages"])


def test_the_top_level_templates_are_mapped_into_the_package() -> None:
    assert SETUPTOOLS["package-dir"] == {
        "kb.templates": "templates",
        "kb.accessibilite": "docs/accessibilite",
    }
    assert SETUPTOOLS["package-data"]["kb.accessibilite"] == ["grille-rgaa.yml"]
    assert SETUPTOOLS["package-data"]["kb.templates"] == ["*.html"]
    assert {p.suffix for p in (ROOT / "templates").iterdir()} == {".html"}
    static = SETUPTOOLS["package-data"]["kb"]
    assert "web/static/*" in static and "migrations/versions/*.py" in static


def test_a_checkout_reads_its_top_level_templates() -> None:
    assert app.templates_dir() == ROOT / "templates"
    assert (app.templates_dir() / "base.html").is_file()


def test_the_release_check_builds_installs_and_serves_the_wheel() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ".ci/wheel-check" in ci
    check = (ROOT / ".ci" / "wheel-check").read_text(encoding="utf-8")
    for step in (
        "pip wheel",
        "-m venv",
        'pip" install',
        'kb" serve',
        "/recherche?q=",
        "/articles/",
    ):
        assert step in check, step


def test_an_installed_package_reads_its_own_templates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "site-packages" / "kb"
    (package / "templates").mkdir(parents=True)
    assert app.templates_dir(package) == package / "templates"


def test_the_accessibility_grid_is_read_from_docs_or_from_the_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kb.insights import accessibility

    assert accessibility.statement_dir() == ROOT / "docs" / "accessibilite"
    package = tmp_path / "site-packages" / "kb"
    (package / "accessibilite").mkdir(parents=True)
    assert accessibility.statement_dir(package) == package / "accessibilite"
