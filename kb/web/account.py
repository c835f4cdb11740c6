"""The personal space: the account's details, its password and its e-mail address."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from kb.helpdesk import accounts, auth, notifications
from kb.helpdesk.accounts import Account, AccountError, LinkInvalid
from kb.helpdesk.auth import TooManyAttempts
from kb.web.auth import (
    ACCOUNT_URL,
    after_answer,
    client_address,
    password_errors,
    queue_mail,
    read_form,
    text_field,
)
from kb.web.services import Services, bind
from kb.web.sessions import SESSION_COOKIE, login_required


def routes(services: Services) -> list[Route]:
    return [
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


@login_required
async def change_password(services: Services, request: Request) -> Response:
    form = await read_form(request)
    account: Account = request.state.account
    new, confirmation = text_field(form, "nouveau"), text_field(form, "confirmation")
    current = text_field(form, "actuel")
    errors = password_errors(account, new, confirmation, "nouveau")
    if not current:
        errors = {"actuel": "Saisissez votre mot de passe actuel.", **errors}
    elif errors and not accounts.verify_password(services.engine, account, current):
        errors = {"actuel": "Le mot de passe actuel est incorrect.", **errors}
    status = 400
    if not errors:
        try:
            auth.change_password(
                services.engine, account, current, new, request.state.session,
                client_address(request),
            )  # fmt: skip
        except (AccountError, TooManyAttempts) as exc:
            errors, status = {"actuel": exc.message}, exc.status
    if errors:
        return _personal_page(services, request, status, password_errors=errors)
    auth.record(
        services.engine, "password_changed", account=account, address=client_address(request)
    )
    response = RedirectResponse(f"{ACCOUNT_URL}?mot-de-passe=1", status_code=303)
    response.background = after_answer(
        queue_mail,
        services.engine,
        notifications.queue_password_changed,
        services.settings,
        account,
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
    form = await read_form(request)
    account: Account = request.state.account
    new_email = text_field(form, "email")
    try:
        email = accounts.normalize_email(new_email)
        if email == account.email:
            raise AccountError("C'est déjà l'adresse e-mail du compte.")
        await anyio.to_thread.run_sync(
            auth.check_password,
            services.engine, account, text_field(form, "mot_de_passe"), client_address(request),
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
            await read_form(request)
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
        await read_form(request)
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
        queue_mail, services.engine, notifications.queue_reset, services.settings, restored
    )
    return response
