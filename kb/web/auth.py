"""Logging in and out, first login, forgotten password, the personal space."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kb.db import DATABASE_DOWN, DatabaseUnavailable
from kb.errors import BadRequest
from kb.helpdesk import accounts, auth, notifications, recovery
from kb.helpdesk.accounts import Account, AccountError, LinkInvalid
from kb.helpdesk.auth import LoginRefused, NotYetActivated, TooManyAttempts
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Endpoint, Services, bind

log = logging.getLogger("kb.helpdesk.auth")
SESSION_COOKIE = "kb_session"
LOGIN_URL = "/connexion"
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
        Route(ACCOUNT_URL, bind(services, personal_space), name="account"),
        Route(
            f"{ACCOUNT_URL}/mot-de-passe",
            bind(services, change_password),
            methods=["POST"],
            name="account_password",
        ),
        Route(
            f"{ACCOUNT_URL}/email",
            bind(services, change_email),
            methods=["POST"],
            name="account_email",
        ),
        Route(
            "/confirmation-email/{token}",
            bind(services, confirm_email),
            methods=["GET", "POST"],
            name="confirm_email",
        ),
        Route(
            "/annulation-email/{token}",
            bind(services, cancel_email),
            methods=["GET", "POST"],
            name="cancel_email",
        ),
    ]


class SessionMiddleware:
    """Puts the logged-in account (or None) in request.state before any route runs."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            state["account"], state["session"] = None, None
            request = Request(scope)
            cookie = request.cookies.get(SESSION_COOKIE)
            if cookie:
                raw = auth.unsign(cookie, self.services.secret_key)
                if raw:
                    try:
                        account = await anyio.to_thread.run_sync(
                            auth.session_account, self.services.engine, raw
                        )
                    except sa.exc.SQLAlchemyError:
                        # The database is down: the help center is read as a visitor
                        # meanwhile; pages that need the account answer a 503.
                        log.warning("sessions: database unavailable, request served anonymously")
                        account, state["session_unknown"] = None, True
                    if account is not None:
                        state["account"], state["session"] = account, raw
        await self.app(scope, receive, send)


def login_required(endpoint: Endpoint) -> Endpoint:
    """Anonymous visitors go to the login page, and come back here after it."""

    @functools.wraps(endpoint)
    async def wrapper(services: Services, request: Request) -> Response:
        if getattr(request.state, "session_unknown", False):
            raise DatabaseUnavailable(DATABASE_DOWN)
        if request.state.account is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{LOGIN_URL}?suivant={quote(target)}", status_code=303)
        return await endpoint(services, request)

    return wrapper


def _next_url(raw: str | None) -> str:
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


def _address(request: Request) -> str:
    return request.client.host if request.client else "inconnue"


async def _form(request: Request) -> FormData:
    form = await request.form(max_files=0, max_fields=50)
    check_csrf(request, form.get(CSRF_FIELD))
    if any(isinstance(v, str) and "\x00" in v for v in form.values()):
        raise BadRequest("Caractère nul interdit dans le formulaire.")
    return form


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _start_session(services: Services, request: Request, account: Account, target: str) -> Response:
    raw = auth.open_session(services.engine, account)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth.sign(raw, services.secret_key),
        max_age=auth.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=services.settings.secure_cookies or request.url.scheme == "https",
    )
    return response


async def login(services: Services, request: Request) -> Response:
    target = _next_url(request.query_params.get("suivant"))
    if request.state.account is not None and request.method == "GET":
        return RedirectResponse(target, status_code=303)
    if request.method == "GET":
        return services.render(request, "login.html", login="", errors={}, target=target)
    form = await _form(request)
    login_value = _field(form, "identifiant")
    try:
        account = await anyio.to_thread.run_sync(
            auth.log_in,
            services.engine,
            login_value,
            _field(form, "mot_de_passe"),
            _address(request),
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
                services.engine, services.settings, exc.account, _address(request),
            )  # fmt: skip
        return refused
    if request.state.session:  # a new id at login: a planted cookie is worth nothing
        auth.close_session(services.engine, request.state.session)
    return _start_session(services, request, account, target)


async def logout(services: Services, request: Request) -> Response:
    await _form(request)
    if request.state.session:
        auth.close_session(services.engine, request.state.session)
        auth.record(services.engine, "logout", account=request.state.account)
    response = RedirectResponse(f"{LOGIN_URL}?deconnecte=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _queue(engine: Any, queue_mail: Any, *args: Any) -> None:
    """The link and its mail in one transaction: both, or neither."""
    with engine.begin() as connection:
        queue_mail(connection, *args)


FORGOT_SENT = (
    "Si un compte correspond à cet identifiant, un e-mail vient d'être envoyé à l'adresse "
    "enregistrée pour ce compte. Le lien qu'il contient est valable {hours} heures. "
    "Pensez à regarder dans les courriers indésirables."
)


async def forgot(services: Services, request: Request) -> Response:
    if request.method == "GET":
        return services.render(request, "forgot.html", login="", errors={}, sent=None)
    form = await _form(request)
    login_value = _field(form, "identifiant")
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
        services.engine, services.settings, normalized, _address(request),
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
    form = await _form(request)
    password, confirmation = _field(form, "mot_de_passe"), _field(form, "confirmation")
    errors = _password_errors(account, password, confirmation, "mot_de_passe")
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
    response = _start_session(
        services, request, account, f"{ACCOUNT_URL}?bienvenue=1" if first else "/"
    )
    if not first:  # a reset: the owner hears of it, whoever followed the link
        response.background = after_answer(
            _queue,
            services.engine,
            notifications.queue_password_changed,
            services.settings,
            account,
        )
    return response


@login_required
async def personal_space(services: Services, request: Request) -> Response:
    notices = {
        "bienvenue": "Votre compte est activé : vous êtes connecté.",
        "mot-de-passe": "Votre mot de passe a été modifié. Vos autres sessions ont été fermées.",
        "email": "Votre nouvelle adresse e-mail est confirmée.",
    }
    notice = next((text for key, text in notices.items() if key in request.query_params), None)
    return _personal_page(services, request, notice=notice)


def _personal_page(
    services: Services, request: Request, status: int = 200, notice: str | None = None,
    password_errors: dict[str, str] | None = None, email_errors: dict[str, str] | None = None,
    new_email: str = "",
) -> Response:  # fmt: skip
    return services.render(
        request, "account.html", status=status, notice=notice,
        password_errors=password_errors or {}, email_errors=email_errors or {},
        new_email=new_email,
    )  # fmt: skip


def _password_errors(
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


@login_required
async def change_password(services: Services, request: Request) -> Response:
    form = await _form(request)
    account: Account = request.state.account
    new, confirmation = _field(form, "nouveau"), _field(form, "confirmation")
    current = _field(form, "actuel")
    errors = _password_errors(account, new, confirmation, "nouveau")
    if not current:
        errors = {"actuel": "Saisissez votre mot de passe actuel.", **errors}
    elif errors and not accounts.verify_password(services.engine, account, current):
        errors = {"actuel": "Le mot de passe actuel est incorrect.", **errors}
    status = 400
    if not errors:
        try:
            auth.change_password(
                services.engine, account, current, new, request.state.session,
                _address(request),
            )  # fmt: skip
        except (AccountError, TooManyAttempts) as exc:
            errors, status = {"actuel": exc.message}, exc.status
    if errors:
        return _personal_page(services, request, status, password_errors=errors)
    auth.record(services.engine, "password_changed", account=account, address=_address(request))
    response = RedirectResponse(f"{ACCOUNT_URL}?mot-de-passe=1", status_code=303)
    response.background = after_answer(
        _queue, services.engine, notifications.queue_password_changed, services.settings, account
    )
    return response


def _queue_email_change(services: Services, account: Account, email: str) -> None:
    """The confirmation to the new address and the notice, with its cancel link, to the
    address in use: one transaction, both or neither."""
    with services.engine.begin() as connection:
        notifications.queue_email_change(connection, services.settings, account, email)
        notifications.queue_email_change_notice(connection, services.settings, account, email)


@login_required
async def change_email(services: Services, request: Request) -> Response:
    """The current password first: a borrowed session must not be enough to take the account.
    The new address confirms; the address in use is told, with a link that undoes it all."""
    form = await _form(request)
    account: Account = request.state.account
    new_email = _field(form, "email")
    try:
        email = accounts.normalize_email(new_email)
        if email == account.email:
            raise AccountError("C'est déjà l'adresse e-mail du compte.")
        await anyio.to_thread.run_sync(
            auth.check_password,
            services.engine, account, _field(form, "mot_de_passe"), _address(request),
        )  # fmt: skip
        await anyio.to_thread.run_sync(_queue_email_change, services, account, email)
    except (AccountError, TooManyAttempts) as exc:
        return _personal_page(
            services, request, exc.status, email_errors={"email": exc.message},
            new_email=new_email,
        )  # fmt: skip
    return _personal_page(
        services,
        request,
        notice=f"Un e-mail de confirmation a été envoyé à {email}. L'adresse du compte changera "
        "quand vous aurez suivi son lien, depuis une session ouverte sur ce compte.",
    )


@login_required
async def confirm_email(services: Services, request: Request) -> Response:
    """A button, not the link itself, confirms (mail scanners that open links change nothing),
    and only from a session of the account the link was made for."""
    token = request.path_params["token"]
    try:
        account, row = accounts.check_link(services.engine, token, ("email_change",))
        if account.id != request.state.account.id:
            raise LinkInvalid(
                "Ce lien concerne un autre compte que celui qui est connecté : déconnectez-vous, "
                "puis connectez-vous avec le compte dont l'adresse change."
            )
        if request.method == "POST":
            await _form(request)
            account, row = accounts.use_link(services.engine, token, ("email_change",))
            accounts.change_email(services.engine, account, row.new_email)
            auth.close_other_sessions(services.engine, account, keep=request.state.session)
            return RedirectResponse(f"{ACCOUNT_URL}?email=1", status_code=303)
    except LinkInvalid as exc:
        return services.render(request, "link_invalid.html", status=410, message=exc.message)
    return services.render(
        request, "confirm_email.html", new_email=row.new_email, login_name=account.login
    )


async def cancel_email(services: Services, request: Request) -> Response:
    """From the notice sent to the previous address: that address comes back, every session
    ends, and a link to choose a new password goes to it."""
    token = request.path_params["token"]
    try:
        account, row = accounts.check_link(services.engine, token, ("email_cancel",))
        if request.method == "GET":
            return services.render(request, "cancel_email.html", previous=row.new_email, done=False)
        await _form(request)
        account, row = accounts.use_link(services.engine, token, ("email_cancel",))
    except LinkInvalid as exc:
        return services.render(request, "link_invalid.html", status=410, message=exc.message)
    accounts.cancel_email_change(services.engine, account, row.new_email)
    restored = accounts.get(services.engine, account.id) or account
    request.state.account = None  # its session, if any, has just ended with the others
    response = services.render(request, "cancel_email.html", previous=row.new_email, done=True)
    if request.state.session:
        response.delete_cookie(SESSION_COOKIE)
    response.background = after_answer(
        _queue, services.engine, notifications.queue_reset, services.settings, restored
    )
    return response
