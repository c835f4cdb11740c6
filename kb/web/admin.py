"""Administration (role "admin"): establishments and agents, as `kb accounts` manages them."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from kb.helpdesk import accounts, administration
from kb.helpdesk.accounts import Account, AccountError
from kb.web.params import int_param
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.sessions import login_required
from kb.web.support import Forbidden

CSV_MAX_BYTES = 5 * 1024 * 1024
# The account form's fields by the name administration.save gives them: their ids on the page.
ACCOUNT_FIELDS = {
    "role": "c-role", "login": "c-uai", "establishment": "c-etab", "first_name": "c-prenom",
    "last_name": "c-nom", "email": "c-email",
}  # fmt: skip
IMPORT_FIELD = "i-fichier"
NOTICES = {
    "desactive": "Compte désactivé : ses sessions sont fermées.",
    "invite": "E-mail d'activation envoyé à nouveau.",
}


def routes(services: Services) -> list[Route]:
    return [
        Route("/admin", bind(services, home), name="admin"),
        Route("/admin/comptes", bind(services, save), methods=["POST"], name="admin_save"),
        Route("/admin/comptes/{account:int}/desactiver", bind(services, disable),
              methods=["POST"], name="admin_disable"),
        Route("/admin/comptes/{account:int}/invitation", bind(services, invite),
              methods=["POST"], name="admin_invite"),
        Route("/admin/import", bind(services, import_csv), methods=["POST"], name="admin_import"),
    ]  # fmt: skip


def admins_only(endpoint: Any) -> Any:
    @functools.wraps(endpoint)
    async def wrapper(services: Services, request: Request) -> Response:
        if request.state.account.role != "admin":
            raise Forbidden("Cette page est réservée aux administrateurs.")
        response: Response = await endpoint(services, request)
        return response

    return login_required(wrapper)


async def _page(
    services: Services, request: Request, status: int = 200, *, error: str | None = None,
    notice: str | None = None, fields: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, import_errors: dict[str, str] | None = None,
    report: Any = None,
) -> Response:  # fmt: skip
    """The page; `errors` and `import_errors` are the account form's and the import's, by
    field id; `error` is about an action on a listed account."""
    params = request.query_params
    words, role = params.get("q", "")[:200], params.get("role", "")
    page = int_param(request, "page", default=1, low=1, high=10_000)
    listing = await anyio.to_thread.run_sync(
        administration.search, services.engine, words, role, page
    )
    actions = await anyio.to_thread.run_sync(administration.recent_actions, services.engine)
    notice = notice or next((t for k, t in NOTICES.items() if k in params), None)
    return services.render(
        request, "admin.html", status=status, listing=listing, words=words, role=role,
        roles=accounts.ROLE_LABELS, actions=actions, error=error, notice=notice,
        fields=fields or {}, errors=errors or {}, import_errors=import_errors or {},
        report=report,
    )  # fmt: skip


@admins_only
async def home(services: Services, request: Request) -> Response:
    return await _page(services, request)


@admins_only
async def save(services: Services, request: Request) -> Response:
    admin: Account = request.state.account
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    fields = {k: str(form.get(k, ""))[:254] for k in
              ("role", "uai", "etablissement", "prenom", "nom", "email")}  # fmt: skip
    values = {
        "role": fields["role"], "login": fields["uai"], "establishment": fields["etablissement"],
        "first_name": fields["prenom"], "last_name": fields["nom"], "email": fields["email"],
    }  # fmt: skip
    wrong = administration.problems(**values)
    if wrong:
        errors = {ACCOUNT_FIELDS[k]: message for k, message in wrong.items()}
        return await _page(services, request, 400, fields=fields, errors=errors)
    try:
        account, outcome = await anyio.to_thread.run_sync(
            lambda: administration.save(
                services.engine, services.settings, admin,
                role=fields["role"], login=fields["uai"], establishment=fields["etablissement"],
                first_name=fields["prenom"], last_name=fields["nom"], email=fields["email"],
            )
        )  # fmt: skip
    except AccountError as exc:  # what only the database knows: tied to the login's field
        errors = {ACCOUNT_FIELDS["login" if values["role"] == "etablissement" else "email"]:
                  exc.message}  # fmt: skip
        return await _page(services, request, 400, fields=fields, errors=errors)
    invited = " ; e-mail d'activation envoyé" if outcome == "créé" else ""
    return await _page(services, request, notice=f"Compte {account.login} {outcome}{invited}.")


@admins_only
async def disable(services: Services, request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    try:
        await anyio.to_thread.run_sync(
            administration.disable, services.engine, request.state.account,
            request.path_params["account"],
        )  # fmt: skip
    except AccountError as exc:
        return await _page(services, request, 400, error=exc.message)
    return RedirectResponse("/admin?desactive=1", status_code=303)


@admins_only
async def invite(services: Services, request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    try:
        await anyio.to_thread.run_sync(
            administration.invite, services.engine, services.settings,
            request.state.account, request.path_params["account"],
        )  # fmt: skip
    except AccountError as exc:
        return await _page(services, request, 400, error=exc.message)
    return RedirectResponse("/admin?invite=1", status_code=303)


@admins_only
async def import_csv(services: Services, request: Request) -> Response:
    declared = request.headers.get("content-length", "")
    too_large = {IMPORT_FIELD: "Le fichier dépasse 5 Mo : découpez-le en plusieurs fichiers."}
    if declared.isdigit() and int(declared) > CSV_MAX_BYTES + 64 * 1024:
        return await _page(services, request, 413, import_errors=too_large)
    async with request.form(max_files=1, max_fields=10, max_part_size=CSV_MAX_BYTES) as form:
        check_csrf(request, form.get(CSRF_FIELD))
        upload = form.get("fichier")
        if not isinstance(upload, UploadFile) or not upload.filename:
            missing = {IMPORT_FIELD: "Choisissez le fichier CSV des établissements à importer."}
            return await _page(services, request, 400, import_errors=missing)
        name = os.path.basename(upload.filename)[:100]
        content = await upload.read(CSV_MAX_BYTES + 1)
    if len(content) > CSV_MAX_BYTES:
        return await _page(services, request, 413, import_errors=too_large)
    services.settings.data_dir.mkdir(parents=True, exist_ok=True)
    handle, raw_path = tempfile.mkstemp(prefix="import-", suffix=".csv",
                                        dir=services.settings.data_dir)  # fmt: skip
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        report = await anyio.to_thread.run_sync(
            administration.import_csv, services.engine, services.settings,
            request.state.account, Path(raw_path), name,
        )  # fmt: skip
    finally:
        with contextlib.suppress(OSError):
            os.unlink(raw_path)
    if not report.problems:
        return await _page(services, request, report=report)
    count = len(report.problems)
    refused = {IMPORT_FIELD: f"{count} ligne{'s' if count > 1 else ''} du fichier « {name} » "
               f"{'sont refusées' if count > 1 else 'est refusée'} : corrigez-les (détail "
               "sous le champ) puis importez le fichier à nouveau."}  # fmt: skip
    return await _page(services, request, 400, import_errors=refused, report=report)
