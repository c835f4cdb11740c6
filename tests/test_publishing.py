"""Publishing: a serving replica notices new content by itself and rebuilds in the background,
serving the previous generation meanwhile; a new replica serves once its first build is done."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from conftest import Site, article, write_tree
from starlette.testclient import TestClient

from kb.config import Settings
from kb.knowledge.build import content_version
from kb.web.app import create_app

FILES = {"abonnement/facture.md": article("Obtenir une facture", "Les factures sont là.")}


@contextlib.contextmanager
def build_held(index_dir: Path) -> Iterator[None]:
    """Holds the index folder's build lock: any build waits, as a long one would."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".build.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def serving(site: Any, tmp_path: Path, index: Path | None = None) -> TestClient:
    settings = Settings.from_env({}, content_dir=site.content, index_dir=index or site.index,
                                 data_dir=tmp_path / "var", content_check_seconds=1)  # fmt: skip
    return TestClient(create_app(settings, background=True))


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def titles(client: TestClient, query: str) -> list[str]:
    return [
        hit["title"] for hit in client.get("/api/search", params={"q": query}).json()["results"]
    ]


def test_a_replica_publishes_new_content_by_itself_and_serves_the_previous_meanwhile(
    make_site: Callable[..., Any], tmp_path: Path
) -> None:
    site = make_site(FILES)
    before = content_version(site.content)
    with serving(site, tmp_path) as client:
        ready = client.get("/readyz").json()
        assert (ready["content_version"], ready["publishing"]) == (before, "à jour")
        with build_held(site.index):  # a long build: the new version is not there yet
            write_tree(site.content, {"abonnement/resilier.md": article("Résilier", "Écrivez.")})
            wait_for(lambda: client.get("/readyz").json()["publishing"] == "construction",
                     "the replica never noticed the new content")  # fmt: skip
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["content_version"] == before
            assert titles(client, "facture") == ["Obtenir une facture"]  # still served
            assert client.get("/articles/resilier").status_code == 404
        wait_for(lambda: client.get("/readyz").json()["publishing"] == "à jour",
                 "the build never finished")  # fmt: skip
        assert titles(client, "résilier") == ["Résilier"]
        assert client.get("/articles/resilier").status_code == 200
        after = client.get("/readyz").json()
        assert after["content_version"] == content_version(site.content) != before
        assert after["index"] != ready.json()["index"]


def test_replicas_with_the_same_content_report_the_same_version(
    make_site: Callable[..., Any], tmp_path: Path
) -> None:
    site = make_site(FILES)
    files = {str(p.relative_to(site.content)): p.read_bytes()
             for p in site.content.rglob("*") if p.is_file()}  # fmt: skip
    time.sleep(0.01)
    other = Site(tmp_path / "content-b", tmp_path / "index-b")  # another host: the same
    other.write(files)  # files, written later (other modification times), no index yet
    with serving(site, tmp_path) as a, serving(other, tmp_path) as b:
        wait_for(lambda: b.get("/readyz").status_code == 200, "replica B never built")
        versions = {client.get("/readyz").json()["content_version"] for client in (a, b)}
        assert versions == {content_version(site.content)}


def test_a_new_replica_without_index_listens_and_is_ready_once_its_first_build_is_done(
    make_site: Callable[..., Any], tmp_path: Path
) -> None:
    site = make_site(FILES, built=False)
    with build_held(site.index), serving(site, tmp_path) as client:  # the build is long
        assert client.get("/livez").status_code == 200  # listening, not to be restarted
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["index"] is None
        assert client.get("/articles/facture").status_code == 503
    with serving(site, tmp_path) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, "the first build never ended")
        assert client.get("/articles/facture").status_code == 200
        assert titles(client, "facture") == ["Obtenir une facture"]


def test_content_with_errors_is_not_published_and_readyz_says_why(
    make_site: Callable[..., Any], tmp_path: Path
) -> None:
    site = make_site(FILES)
    with serving(site, tmp_path) as client:
        write_tree(site.content, {"abonnement/casse.md": "---\ntitle: [\n---\nx\n"})
        wait_for(lambda: client.get("/readyz").json()["publishing"] == "erreurs",
                 "the broken content was never checked")  # fmt: skip
        ready = client.get("/readyz")
        assert ready.status_code == 200  # the previous version serves
        assert any("abonnement/casse.md:2" in p for p in ready.json()["content_problems"])
        assert titles(client, "facture") == ["Obtenir une facture"]
        write_tree(site.content, {"abonnement/casse.md": article("Réparé", "Enfin.")})
        wait_for(lambda: titles(client, "réparé") == ["Réparé"], "the fix was never published")
        assert client.get("/readyz").json()["content_problems"] == []
