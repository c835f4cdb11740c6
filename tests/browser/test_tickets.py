"""An establishment's help tickets: suggested articles, a progress bar while the file goes,
the ticket page with its due date, the list; the size limit; the form without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from .conftest import Server

pytestmark = pytest.mark.browser

TICKET_URL = re.compile(r"/tickets/(T-\d{4}-\d{6})\?cree=1$")
DUE = re.compile(
    r"^Réponse prévue au plus tard le (lundi|mardi|mercredi|jeudi|vendredi) (1er|\d{1,2}) "
    r"[a-zéû]+ \d{4} à \d{1,2} h \d{2}$"
)
MESSAGE = "Depuis ce matin, la page de connexion refuse notre mot de passe."
# Slow enough for the bar to be seen, fast enough for the test: 4 Mo in under 3 seconds.
UPLOAD_BYTES_PER_SECOND = 1_500_000
PART_SENT = r"""() => {
  const bar = document.querySelector("[data-progress] progress");
  const text = document.querySelector("[data-progress-text]").textContent;
  return bar.checkVisibility() && bar.value > 0 && bar.value < 100 && new RegExp(
    "^" + bar.value + " % envoyés \\([\\d,]+ (octets|Ko|Mo) sur 4 Mo\\), environ \\d+ s restantes$"
  ).test(text);
}"""


def attachment(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    with path.open("wb") as out:
        out.truncate(size)  # sparse: the content does not matter, the size does
    return path


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Chromium's own network emulation: the request body leaves at this pace."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1,
         "uploadThroughput": bytes_per_second},
    )  # fmt: skip


def test_create_a_ticket_with_suggestions_progress_and_an_attachment(
    helpdesk: Server,
    visit: Callable[..., Page],
    axe: Callable[[Page], str],
    artifacts: Path,
    tmp_path: Path,
) -> None:
    helpdesk.establishment()
    page = visit(helpdesk.url)
    helpdesk.log_in(page, "0750654D")

    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Créer un ticket d'aide").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Liste des tickets")
    expect(page.get_by_role("main")).to_contain_text("Vous n'avez pas encore de ticket.")
    assert not (found := axe(page)), f"axe, liste des tickets vide :\n{found}"
    page.get_by_role("main").get_by_role("link", name="Créer un ticket d'aide").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Créer un ticket d'aide")

    subject = page.get_by_label("Objet")
    subject.press_sequentially("mot de passe oublié")
    suggestions = page.get_by_role(
        "list", name="Ces articles répondent peut-être à votre question :"
    )
    expect(suggestions).to_be_visible()
    first = suggestions.get_by_role("link").first
    expect(first).to_have_accessible_name(re.compile(r"mot de passe.*\(nouvel onglet\)$", re.I))
    expect(first).to_have_attribute("target", "_blank")
    expect(page.get_by_role("status").filter(has_text="article(s)")).to_contain_text(
        "répondent peut-être à votre question"
    )

    page.get_by_label("Catégorie de la demande").select_option(label="Compte utilisateur")
    page.get_by_label("Message").fill(MESSAGE)
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        attachment(tmp_path, "journal-connexion.png", 4 * 1024 * 1024)
    )
    page.screenshot(path=artifacts / "ticket-formulaire-suggestions.png", full_page=True)
    assert not (found := axe(page)), f"axe, formulaire avec suggestions :\n{found}"

    # A suggestion opens in a new tab: the form and what was typed stay where they are.
    with page.context.expect_page() as opened:
        title = first.inner_text().replace("(nouvel onglet)", "").replace("↗", "").strip()
        first.click()
    article = opened.value
    expect(article).to_have_url(re.compile(r"/articles/[\w-]+\?depuis=ticket$"))
    expect(article.get_by_role("heading", level=1)).to_have_text(title)
    article.close()
    expect(page.get_by_label("Message")).to_have_value(MESSAGE)

    throttle_uploads(page, UPLOAD_BYTES_PER_SECOND)
    submit = page.get_by_role("button", name="Envoyer le ticket")
    announced: list[str] = []
    page.expose_function("heard", lambda text: announced.append(text))
    page.evaluate("""() => {
      const region = document.querySelector("[data-upload-announce]");
      new MutationObserver(() => window.heard(region.textContent)).observe(region, {childList: true, characterData: true, subtree: true});
    }""")
    submit.click()
    progress = page.get_by_role("progressbar", name="Envoi en cours")
    expect(progress).to_be_visible()
    # One moment seen whole: the bar partly filled, its percentage and the time left in words.
    page.wait_for_function(PART_SENT)
    # Sending: the button keeps the focus (a disabled one would drop it to <body>).
    expect(submit).to_be_focused()
    expect(submit).to_have_attribute("aria-disabled", "true")

    expect(page).to_have_url(TICKET_URL, timeout=20_000)
    # Screen readers heard the progress by steps of 10 %, not at every progress event.
    steps = [a for a in announced if a.startswith("Envoi : ")]
    assert steps and len(steps) == len(set(steps)) <= 11, announced
    assert all(re.fullmatch(r"Envoi : (100|[1-9]?0) %", a) for a in steps), steps
    reference = TICKET_URL.search(page.url)[1]  # type: ignore[index]
    expect(page.get_by_role("heading", level=1)).to_have_text("mot de passe oublié")
    main = page.get_by_role("main")
    expect(main.get_by_role("status").filter(has_text="enregistrée")).to_have_text(
        "Votre demande est enregistrée. Vous recevrez la réponse dans ce fil."
    )
    details = main.locator("dl.details")
    expect(details.locator("dt:text-is('Référence') + dd")).to_have_text(reference)
    expect(details.locator("dt:text-is('Catégorie') + dd")).to_have_text("Compte utilisateur")
    expect(details.locator("dt:text-is('Statut') + dd")).to_have_text("Nouveau")
    expect(main.locator("p.due")).to_have_text(DUE)
    files = main.get_by_role("list", name="Pièces jointes", exact=True)
    expect(files.get_by_role("link", name="journal-connexion.png")).to_be_visible()
    expect(files).to_contain_text("journal-connexion.png (4 Mo)")
    expect(main.locator(".thread__body").first).to_have_text(MESSAGE)
    page.screenshot(path=artifacts / "ticket.png", full_page=True)
    assert not (found := axe(page)), f"axe, page du ticket :\n{found}"

    page.get_by_role("link", name="Liste des tickets").first.click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=reference))
    expect(row).to_contain_text("mot de passe oublié")
    expect(row).to_contain_text("Compte utilisateur")
    expect(row).to_contain_text("Nouveau")
    assert not (found := axe(page)), f"axe, liste des tickets :\n{found}"
    row.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("mot de passe oublié")


def test_a_file_over_the_limit_is_refused_before_sending_and_nothing_is_lost(
    make_server: Callable[..., Server],
    visit: Callable[..., Page],
    axe: Callable[[Page], str],
    tmp_path: Path,
) -> None:
    server = make_server(max_upload_bytes=1024 * 1024)
    server.establishment()
    page = visit(server.url)
    server.log_in(page, "0750654D")
    page.goto("/tickets/nouveau?categorie=abonnement")
    category = page.get_by_label("Catégorie de la demande")
    expect(category).to_have_value("abonnement")  # pre-filled from where the user came
    page.get_by_label("Objet").fill("Facture introuvable")
    page.get_by_label("Message").fill(MESSAGE)
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        attachment(tmp_path, "archive.zip", 2 * 1024 * 1024)
    )
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)

    page.get_by_role("button", name="Envoyer le ticket").click()
    expect(page.get_by_role("alert").get_by_role("link")).to_have_text(
        "Les pièces jointes font 2 Mo : c'est plus que les 1 Mo autorisés. "
        "Retirez ou compressez un fichier ; votre message est conservé."
    )
    expect(page.get_by_label("Pièces jointes (facultatif)")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert posts == []  # refused in the page: nothing went to the server
    expect(page).to_have_url(re.compile(r"/tickets/nouveau\?categorie=abonnement$"))
    expect(category).to_have_value("abonnement")
    expect(page.get_by_label("Objet")).to_have_value("Facture introuvable")
    expect(page.get_by_label("Message")).to_have_value(MESSAGE)
    expect(page.get_by_role("button", name="Envoyer le ticket")).to_be_enabled()
    expect(page.get_by_role("progressbar")).to_be_hidden()
    assert not (found := axe(page)), f"axe, pièce jointe trop grosse :\n{found}"

    # A smaller file and the same form: sent, and one ticket only.
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        attachment(tmp_path, "facture.pdf", 300 * 1024)
    )
    page.get_by_role("button", name="Envoyer le ticket").click()
    expect(page).to_have_url(TICKET_URL)
    expect(page.get_by_role("list", name="Pièces jointes", exact=True)).to_contain_text(
        "facture.pdf (300 Ko)"
    )
    page.goto("/tickets")
    expect(page.get_by_role("row").filter(has_text="Facture introuvable")).to_have_count(1)


def test_missing_fields_are_named_and_what_was_typed_stays(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str]
) -> None:
    helpdesk.establishment()
    page = visit(helpdesk.url)
    helpdesk.log_in(page, "0750654D")
    page.goto("/tickets/nouveau")
    page.get_by_label("Objet").fill("Sans catégorie")
    page.get_by_role("button", name="Envoyer le ticket").click()
    alert = page.get_by_role("alert").filter(has_text="catégorie")
    expect(alert).to_be_visible()
    expect(page.get_by_label("Objet")).to_have_value("Sans catégorie")
    assert not (found := axe(page)), f"axe, erreurs montrées par le script :\n{found}"

    # The page the server answers when the form is sent as plain HTML (no submit handler runs).
    page.locator("form[data-upload]").evaluate("form => form.submit()")
    errors = page.get_by_role("alert").filter(has_text="Le ticket n'est pas encore envoyé")
    expect(errors).to_contain_text("catégorie")
    expect(page.get_by_label("Objet")).to_have_value("Sans catégorie")
    assert not (found := axe(page)), f"axe, erreurs montrées par le serveur :\n{found}"


# No axe here: axe-core is a script, and in a page without JavaScript its run never ends.
def test_without_javascript_the_plain_form_creates_a_ticket_with_an_attachment(
    helpdesk: Server, visit: Callable[..., Page], tmp_path: Path
) -> None:
    helpdesk.establishment()
    page = visit(helpdesk.url, java_script_enabled=False)
    helpdesk.log_in(page, "0750654D")
    page.goto("/tickets/nouveau")
    page.get_by_label("Objet").fill("Export impossible")
    page.get_by_label("Message").fill(MESSAGE)
    page.get_by_role("button", name="Envoyer le ticket").click()

    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("Le ticket n'est pas encore envoyé")
    expect(errors).to_contain_text("catégorie")
    expect(page.get_by_label("Catégorie de la demande")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Objet")).to_have_value("Export impossible")
    expect(page.get_by_label("Message")).to_have_value(MESSAGE)

    page.get_by_label("Catégorie de la demande").select_option(label="Abonnement")
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        attachment(tmp_path, "export.csv", 1024 * 1024)
    )
    page.get_by_role("button", name="Envoyer le ticket").click()
    expect(page).to_have_url(TICKET_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Export impossible")
    expect(page.get_by_role("list", name="Pièces jointes", exact=True)).to_contain_text(
        "export.csv (1 Mo)"
    )
    expect(page.get_by_role("main").locator("p.due")).to_have_text(DUE)


def test_a_french_file_name_is_kept(
    helpdesk: Server, visit: Callable[..., Page], tmp_path: Path
) -> None:
    helpdesk.establishment()
    page = visit(helpdesk.url)
    helpdesk.log_in(page, "0750654D")
    page.goto("/tickets/nouveau?categorie=utilisation")
    page.get_by_label("Objet").fill("Capture jointe")
    page.get_by_label("Message").fill(MESSAGE)
    page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        attachment(tmp_path, "capture d'écran.png", 1024)
    )
    page.get_by_role("button", name="Envoyer le ticket").click()
    expect(page).to_have_url(TICKET_URL)
    files = page.get_by_role("list", name="Pièces jointes", exact=True)
    expect(files.get_by_role("link")).to_have_text("capture d'écran.png", timeout=2_000)
