"""Sessions on the web: the signed cookie, the account in request.state, login_required, and
opening a session after a login."""

from __future__ import annotations

import functools
import logging
from urllib.parse import quote

import anyio
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kb.db import DATABASE_DOWN, DatabaseUnavailable
from kb.helpdesk import auth
from kb.helpdesk.accounts import Account
from kb.web.security import cookies
from kb.web.services import Endpoint, Services

log = logging.getLogger("kb.helpdesk.auth")
SESSION_COOKIE = "kb_session"
LOGIN_URL = "/connexion"


class SessionMiddleware:
    """Puts the logged-in account (or None) in request.state before any route runs."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            state["account"], state["session"] = None, None
            cookie = cookies(scope).get(SESSION_COOKIE)
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


def start_session(services: Services, request: Request, account: Account, target: str) -> Response:
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
