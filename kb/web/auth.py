"""Logging in and out, first login, forgotten password; the account pages' form helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest
from kb.helpdesk import accounts, auth, notifications, recovery
from kb.helpdesk.accounts import Account, AccountError, LinkInvalid
from kb.helpdesk.auth import LoginRefused, NotYetActivated, TooManyAttempts
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.sessions import LOGIN_URL, SESSION_COOKIE, start_session

log = logging.getLogger("kb.helpdesk.auth")
ACCOUNT_URL = "/espace-personnel"


def routes(services: Services) -> list[Route]:
    return [
        Route(LOGIN_URL, bind(services, login), methods=["GET", "POST"], name="login"),
        Route("/deconnexion", bind(services, logout), methods=["POST"], name="logout"),
        Route(
            "/mot-de-passe-oublie", bind(services, forgot), methods=["GET", "POST"], name="forgot"
        ),
        Route(
            "/activation/{token}",
            bind(services, activate),
            methods=["GET", "POST"],
            name="activate",
        ),
    ]


def next_url(raw: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/"


def after_answer(job: Callable[..., object], *args: object) -> BackgroundTask:
    """Work done once the answer has gone (a mail): its time tells the asker nothing, and a
    failure is logged, never shown."""

    def run() -> None:
        try:
            job(*args)
        except Exception:
            log.exception("accounts: %s failed", getattr(job, "__name__", job))

    return BackgroundTask(run)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "inconnue"


async def read_form(request: Request) -> FormData:
    """A small form of the account pages: CSRF checked, no file, no NUL."""
    form = await request.form(max_files=0, max_fields=50)
    check_csrf(request, form.get(CSRF_FIELD))
    if any(isinstance(v, str) and "\x00" in v for v in form.values()):
        raise BadRequest("Caractère nul interdit dans le formulaire.")
    return form


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def password_errors(
    account: Account, password: str, confirmation: str, field: str
) -> dict[str, str]:
    """What is wrong with a new password and its confirmation, field by field."""
    errors = {}
    problem = accounts.password_problem(password, account)
    if problem:
        errors[field] = problem
    if password != confirmation:
        errors["confirmation"] = "Les deux mots de passe ne sont pas identiques."
    return errors


async def login(services: Services, request: Request) -> Response:
    target = next_url(request.query_params.get("suivant"))
    if request.state.account is not None and request.method == "GET":
        return RedirectResponse(target, status_code=303)
    if request.method == "GET":
        return services.render(request, "login.html", login="", errors={}, target=target)
    form = await read_form(request)
    login_value = text_field(form, "identifiant")
    try:
        account = await anyio.to_thread.run_sync(
            auth.log_in,
            services.engine,
            login_value,
            text_field(form, "mot_de_passe"),
            client_address(request),
        )
    except (AccountError, LoginRefused, TooManyAttempts) as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 400
        refused = services.render(
            request, "login.html", status=status, login=login_value,
            errors={"identifiant": exc.message}, target=target,
        )  # fmt: skip
        if isinstance(exc, NotYetActivated):  # by e-mail, after the answer: same words, same time
            refused.background = after_answer(
                recovery.activation_hint,
                services.engine, services.settings, exc.account, client_address(request),
            )  # fmt: skip
        return refused
    if request.state.session:  # a new id at login: a planted cookie is worth nothing
        auth.close_session(services.engine, request.state.session)
    return start_session(services, request, account, target)


async def logout(services: Services, request: Request) -> Response:
    await read_form(request)
    if request.state.session:
        auth.close_session(services.engine, request.state.session)
        auth.record(services.engine, "logout", account=request.state.account)
    response = RedirectResponse(f"{LOGIN_URL}?deconnecte=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def queue_mail(engine: Any, write: Any, *args: Any) -> None:
    """The link and its mail in one transaction: both, or neither."""
    with engine.begin() as connection:
        write(connection, *args)


FORGOT_SENT = (
    "Si un compte correspond à cet identifiant, un e-mail vient d'être envoyé à l'adresse "
    "enregistrée pour ce compte. Le lien qu'il contient est valable {hours} heures. "
    "Pensez à regarder dans les courriers indésirables."
)


async def forgot(services: Services, request: Request) -> Response:
    if request.method == "GET":
        return services.render(request, "forgot.html", login="", errors={}, sent=None)
    form = await read_form(request)
    login_value = text_field(form, "identifiant")
    try:
        normalized = accounts.normalize_login(login_value)
    except AccountError as exc:
        return services.render(
            request, "forgot.html", status=400, login=login_value,
            errors={"identifiant": exc.message}, sent=None,
        )  # fmt: skip
    # The same answer, at the same speed, whether the account exists, is disabled, or has had
    # its share of mails this hour: the mail (if any) is queued after the answer.
    sent = FORGOT_SENT.format(hours=services.settings.reset_hours)
    response = services.render(request, "forgot.html", login=login_value, errors={}, sent=sent)
    response.background = after_answer(
        recovery.request_reset,
        services.engine, services.settings, normalized, client_address(request),
    )  # fmt: skip
    return response


async def activate(services: Services, request: Request) -> Response:
    """First login and forgotten password: choose the password, then be logged in."""
    token = request.path_params["token"]
    purposes = ("activation", "reset")
    try:
        account, row = accounts.check_link(services.engine, token, purposes)
    except LinkInvalid as exc:
        return services.render(request, "link_invalid.html", status=410, message=exc.message)
    first = row.purpose == "activation"
    context: dict[str, Any] = {"account_for_link": account, "first": first, "errors": {}}
    if request.method == "GET":
        return services.render(request, "activation.html", **context)
    form = await read_form(request)
    password, confirmation = text_field(form, "mot_de_passe"), text_field(form, "confirmation")
    errors = password_errors(account, password, confirmation, "mot_de_passe")
    if errors:
        return services.render(
            request, "activation.html", status=400, **{**context, "errors": errors}
        )
    try:
        accounts.use_link(services.engine, token, purposes)
    except LinkInvalid as exc:
        return services.render(request, "link_invalid.html", status=410, message=exc.message)
    accounts.set_password(services.engine, account, password)
    auth.close_other_sessions(services.engine, account, keep=None)
    response = start_session(
        services, request, account, f"{ACCOUNT_URL}?bienvenue=1" if first else "/"
    )
    if not first:  # a reset: the owner hears of it, whoever followed the link
        response.background = after_answer(
            queue_mail,
            services.engine,
            notifications.queue_password_changed,
            services.settings,
            account,
        )
    return response
