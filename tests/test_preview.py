"""kb serve --reload: every content change rebuilds; errors show in the page; pages reload."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import Site, Web, article, page, read
from starlette.testclient import TestClient

from kb.testing import serving
from kb.web import templating
from kb.web.app import create_app
from kb.web.preview import Preview


@pytest.fixture
def preview(make_web: Callable[..., Web]) -> Iterator[tuple[Web, str]]:
    web = make_web(
        {"abonnement/a.md": article("Facture annuelle", "Premier texte."),
         "abonnement/b.md": article("Brouillon", "Pas publié.", draft="true")},
    )  # fmt: skip
    # The server's own app: one lifespan, so one watcher, as under kb serve --reload.
    settings = dataclasses.replace(web.settings, live_reload=True, show_drafts=True)
    app = create_app(settings, background=False)
    with serving(app) as base:
        yield web, base


def wait_for(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_edits_rebuild_errors_show_and_pages_are_told_to_reload(preview: tuple[Web, str]) -> None:
    web, base = preview
    with httpx2.Client(base_url=base, timeout=10) as client:
        shown = read(client, "/articles/a")
        assert shown.having("body", data_live_reload="/__apercu/evenements")  # told to reload
        assert "Premier texte." in shown.text
        assert "Brouillon" in read(client, "/articles/b").text  # drafts show in preview
        events: list[str] = []

        def listen() -> None:
            with (
                httpx2.Client(base_url=base, timeout=30) as sse,
                sse.stream("GET", "/__apercu/evenements") as response,
            ):
                for line in response.iter_lines():
                    events.append(line)
                    if line == "data: reload" and events.count("data: reload") >= 2:
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(lambda: any(e.startswith("event: hello") for e in events))
        web.site.write({"abonnement/a.md": article("Facture annuelle", "Texte modifié.")})
        wait_for(lambda: "Texte modifié." in read(client, "/articles/a").text)
        wait_for(lambda: "data: reload" in events)
        web.site.write({"abonnement/a.md": "---\ntitle: [\n---\nCassé.\n"})
        wait_for(lambda: "Aperçu : le contenu a des erreurs." in read(client, "/articles/a").text)
        broken = read(client, "/articles/a").text
        assert "a.md:2: YAML invalide" in broken
        assert "Texte modifié." in broken  # the last good version keeps serving
        web.site.write({"abonnement/a.md": article("Facture annuelle", "Réparé.")})
        wait_for(lambda: "Réparé." in read(client, "/articles/a").text)
        # The index switches a moment before the banner clears: wait, do not race it.
        wait_for(
            lambda: "Aperçu : le contenu a des erreurs." not in read(client, "/articles/a").text
        )
        listener.join(timeout=10)
    assert events.count("data: reload") >= 2


def test_events_exist_only_in_preview(make_web: Callable[..., Web]) -> None:
    web = make_web({"abonnement/a.md": article("A")})
    assert web.client.get("/__apercu/evenements").status_code == 404
    assert "data-live-reload" not in page(web, "/").having("body")[0]


def test_warnings_show_from_the_start_and_errors_with_them(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({"abonnement/a.md": article("A", "Pourquoi?", summary="S", keywords="[a]")})
    settings = dataclasses.replace(web.settings, live_reload=True, show_drafts=True)
    app = create_app(settings, background=False)
    with TestClient(app) as client:  # the lifespan runs the watcher: it checks at once
        wait_for(lambda: "avertissement" in read(client, "/articles/a").text)
        shown = read(client, "/articles/a")
        assert shown.having("div", role="status") and "Aperçu : 1 avertissement." in shown.text
        assert "a.md:6: espace manquante dans « Pourquoi? »" in shown.text
        assert not shown.having("*", role="alert")
        web.site.write({"abonnement/b.md": "---\ntitle: [\n---\nx\n"})
        wait_for(lambda: "Aperçu : le contenu a des erreurs." in read(client, "/articles/a").text)
        shown = read(client, "/articles/a")
        assert "b.md:2: YAML invalide" in shown.text and "espace manquante" in shown.text


def test_the_terminal_shows_problems_in_a_block_of_their_own(
    make_site: Callable[..., Site],
) -> None:
    site = make_site({"abonnement/a.md": article("A", "Voir [B](b.md#x).", summary="S", keywords="[a]"),
                      "abonnement/b.md": article("B", "Texte.", summary="S", keywords="[a]")},
                     built=False)  # fmt: skip
    out = io.StringIO()
    preview = Preview()
    preview.rebuild(site.content, site.index, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ""
    assert re.fullmatch(r"── Aperçu \d\d:\d\d:\d\d : 1 erreur\(s\) ──", lines[1])
    assert lines[2].startswith("  erreur : ") and "a.md:6: section « #x » introuvable" in lines[2]
    assert lines[3] == "  la dernière version valide reste affichée"
    assert set(lines[4]) == {"─"}
    assert preview.errors and not preview.warnings


def test_a_template_edited_shows_in_the_preview_at_once(
    make_web: Callable[..., Web], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview looks at the templates' files before each page; a serving replica, whose
    templates never change while it runs, does not (three files a page)."""
    copy = tmp_path / "templates"
    shutil.copytree(templating.TEMPLATES_DIR, copy)
    monkeypatch.setattr(templating, "TEMPLATES_DIR", copy)
    web = make_web({"abonnement/a.md": article("A")})
    home = copy / "home.html"

    def edit(old: str, new: str) -> None:
        home.write_text(home.read_text().replace(old, new))
        later = home.stat().st_mtime + 10
        os.utime(home, (later, later))

    previewing = dataclasses.replace(web.settings, live_reload=True, show_drafts=True)
    for settings, shown in ((previewing, True), (web.settings, False)):
        with TestClient(create_app(settings, background=False)) as client:
            assert "Votre demande concerne" in client.get("/").text
            edit("Votre demande concerne", "Votre question porte sur")
            assert ("Votre question porte sur" in client.get("/").text) is shown
            edit("Votre question porte sur", "Votre demande concerne")
