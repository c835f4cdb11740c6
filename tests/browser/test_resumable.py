"""A large attachment sent in the background, resumed after a reload, then attached."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from kb import tables

from .conftest import Server

pytestmark = pytest.mark.browser

SIZE = 24 * 1024 * 1024
SLOW = 1_500_000  # bytes a second: a few seconds of sending before the reload


def throttle(page: Page, bytes_per_second: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1,
         "uploadThroughput": bytes_per_second},
    )  # fmt: skip


def percent(page: Page) -> int:
    text = page.locator(".resumable__text").first.inner_text()
    found = re.match(r"(\d+) %", text)
    return int(found[1]) if found else 0


def test_reload_in_the_middle_then_the_same_file_resumes(
    helpdesk: Server, visit: Callable[..., Page], tmp_path: Path
) -> None:
    helpdesk.establishment()
    path = tmp_path / "sauvegarde-eleves.zip"
    data = os.urandom(1024 * 1024) * (SIZE // (1024 * 1024))
    path.write_bytes(data)
    page = visit(helpdesk.url)
    helpdesk.log_in(page, "0750654D")
    page.goto("/tickets/nouveau")
    page.get_by_label("Catégorie de la demande").select_option("utilisation")
    page.get_by_label("Objet").fill("Sauvegarde à analyser")
    page.get_by_label("Message").fill("Voici la sauvegarde demandée.")

    throttle(page, SLOW)
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(str(path))
    item = page.locator(".resumable__item")
    expect(item).to_contain_text("sauvegarde-eleves.zip (24 Mo)")
    expect(item.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.get_by_role("button", name="Envoyer le ticket")).to_be_disabled()
    expect(item.locator(".resumable__text")).to_contain_text(re.compile(r"\d+ % .*restantes"))
    page.wait_for_function(
        "() => { const t = document.querySelector('.resumable__text'); "
        "const m = t && t.textContent.match(/^(\\d+) %/); return m && Number(m[1]) >= 15; }"
    )
    reached = percent(page)
    assert 15 <= reached < 100

    page.reload()  # the laptop's lid closes, the page comes back
    expect(page.get_by_label("Objet")).to_have_value("Sauvegarde à analyser")  # kept in the browser
    expect(page.get_by_label("Message")).to_have_value("Voici la sauvegarde demandée.")
    expect(page.locator(".resumable__item")).to_have_count(0)
    throttle(page, -1)  # full speed now
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(str(path))
    first_seen: list[int] = []
    page.wait_for_function(
        "() => { const t = document.querySelector('.resumable__text'); "
        "return t && /^\\d+ %/.test(t.textContent); }"
    )
    first_seen.append(percent(page))
    assert first_seen[0] >= reached - 5  # resumed, not started over
    expect(page.locator(".resumable__text")).to_have_text("Envoyé : 24 Mo.", timeout=60_000)
    page.get_by_role("button", name="Envoyer le ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/T-\d{4}-\d{6}\?cree=1$"))
    expect(page.get_by_role("link", name="sauvegarde-eleves.zip")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("(24 Mo)")
    with helpdesk.app.state.services.engine.connect() as connection:
        [attachment] = connection.execute(sa.select(tables.attachments)).all()
        assert connection.execute(sa.select(tables.uploads)).all() == []
    assert (attachment.size, attachment.sha256) == (SIZE, hashlib.sha256(data).hexdigest())
    page.goto("/tickets/nouveau")
    expect(page.get_by_label("Objet")).to_have_value("")  # sent: nothing left to restore


def test_pause_resume_and_cancel(
    helpdesk: Server, visit: Callable[..., Page], tmp_path: Path
) -> None:
    helpdesk.establishment()
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(12 * 1024 * 1024))
    page = visit(helpdesk.url)
    helpdesk.log_in(page, "0750654D")
    page.goto("/tickets/nouveau")
    throttle(page, SLOW)
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(str(path))
    item = page.locator(".resumable__item")
    # The input emptied of the large file says where it went.
    files = page.get_by_label("Pièces jointes (facultatif)")
    expect(files).to_have_accessible_description(re.compile("1 fichier joint, envoyé à part"))
    expect(item.locator(".resumable__text")).to_contain_text(" %")
    # While it goes, the submit button stays in the Tab order and says why it waits.
    submit = page.get_by_role("button", name="Envoyer le ticket")
    expect(submit).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_role("status").filter(has_text="Le bouton s'activera")).to_be_visible()
    submit.focus()
    page.keyboard.press("Enter")  # held back, announced again, the focus stays
    expect(submit).to_be_focused()
    expect(page).to_have_url(re.compile(r"/tickets/nouveau$"))
    # Each button that disappears hands the focus to the one that takes its place.
    pause = item.get_by_role("button", name="Pause de l'envoi de « video.mp4 »")
    pause.focus()
    page.keyboard.press("Enter")
    expect(item.locator(".resumable__text")).to_contain_text("En pause à")
    resume = item.get_by_role("button", name="Reprendre l'envoi de « video.mp4 »")
    expect(resume).to_be_focused()
    page.keyboard.press("Enter")
    expect(pause).to_be_focused()
    throttle(page, -1)
    expect(item.locator(".resumable__text")).to_have_text("Envoyé : 12 Mo.", timeout=60_000)
    remove = item.get_by_role("button", name="Retirer la pièce jointe « video.mp4 »")
    expect(remove).to_be_focused()  # Pause is gone with the upload done
    expect(submit).not_to_have_attribute("aria-disabled", "true")
    page.keyboard.press("Enter")
    expect(page.locator(".resumable__item")).to_have_count(0)
    expect(files).to_be_focused()  # the row went: back to the file input, not to <body>
    expect(page.locator("input[name=televersement]")).to_have_count(0)
    # Cancelled on the server too (tus termination), once the DELETE has arrived.
    deadline = time.monotonic() + 10
    while True:
        with helpdesk.app.state.services.engine.connect() as connection:
            left = connection.execute(sa.select(tables.uploads)).all()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == []
