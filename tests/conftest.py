"""Fixtures: a help center built from a dict of files, the CLI, the shipped content."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kb.build import build
from kb.cli import main
from kb.search import SearchIndex, Snapshot

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONTENT = ROOT / "content"

CATEGORIES = {
    "compte-utilisateur/_category.yml": (
        "title: Compte utilisateur\norder: 1\ndescription: Le compte.\n"
    ),
    "abonnement/_category.yml": "title: Abonnement\norder: 2\ndescription: L'abonnement.\n",
    "utilisation/_category.yml": (
        "title: Utilisation de l'application\norder: 3\ndescription: L'usage.\n"
    ),
}


def article(title: str, body: str = "Un texte.", **front: object) -> str:
    """The text of an article file with the given front matter."""
    lines = [f"title: {title}"]
    for key, value in front.items():
        lines.append(f"{key}: {value}")
    return "---\n" + "\n".join(lines) + "\n---\n" + textwrap.dedent(body).strip() + "\n"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return root


@dataclass
class Site:
    content: Path
    index: Path

    def write(self, files: dict[str, str | bytes]) -> None:
        write_tree(self.content, files)

    def build(self, full: bool = False):  # type: ignore[no-untyped-def]
        return build(self.content, self.index, full=full)

    def snapshot(self) -> Snapshot:
        return SearchIndex(self.index).snapshot()

    def slugs(self, query: str, **options: object) -> list[str]:
        return [h.slug for h in self.snapshot().search(query, **options).hits]  # type: ignore[arg-type]


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., Site]:
    """A help center from a dict of files (categories included unless given)."""

    def make(files: dict[str, str | bytes], categories: bool = True, built: bool = True) -> Site:
        site = Site(tmp_path / "content", tmp_path / "index")
        site.write({**(CATEGORIES if categories else {}), **files})
        if built:
            site.build()
        return site

    return make


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """The shipped content, built once for the session."""
    index = tmp_path_factory.mktemp("shipped-index")
    build(SHIPPED_CONTENT, index)
    return SearchIndex(index).snapshot()


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Runs `kb ARGS…` in-process and returns its status and output."""

    def run(*args: str | Path) -> Run:
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run
