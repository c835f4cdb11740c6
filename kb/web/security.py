"""Security headers on every response, and a CSRF token for the forms of anonymous visitors."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.errors import KbError

CSRF_COOKIE = "kb_csrf"
CSRF_FIELD = "csrf"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-frame-options", "DENY"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)

RAW_HEADERS = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in HEADERS)
# Over HTTPS (seen directly, or from a trusted proxy's X-Forwarded-Proto): browsers keep to
# HTTPS for a year, so a network in between cannot strip it on the next visit.
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class CsrfRejected(KbError):
    status = 403
    code = "csrf"


class SecurityMiddleware:
    """Adds the headers, and gives each browser a CSRF cookie the first time it comes."""

    def __init__(self, app: ASGIApp, secure_cookies: bool = False) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _refuse(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        token = cookies(scope).get(CSRF_COOKIE, "")
        fresh = len(token) != 43
        if fresh:
            token = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = token
        https = scope.get("scheme") == "https"
        secure = self.secure_cookies or https

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Raw pairs: cheaper than a MutableHeaders view on every answer.
                raw = message["headers"] = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}
                raw.extend(pair for pair in RAW_HEADERS if pair[0] not in present)
                if https and HSTS[0] not in present:
                    raw.append(HSTS)
                # Pages carry forms; JSON answers and static files need no token.
                if fresh and any(
                    name.lower() == b"content-type" and value.startswith(b"text/html")
                    for name, value in raw
                ):
                    cookie = f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
                    cookie += "; Secure" if secure else ""
                    raw.append((b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies, parsed once for the middlewares that read them (Starlette's
    `Request.cookies` parses them again for each `Request`)."""
    parsed = scope.get("kb.cookies")
    if parsed is None:
        header = next((v for k, v in scope.get("headers", ()) if k == b"cookie"), b"")
        parsed = scope["kb.cookies"] = cookie_parser(header.decode("latin-1"))
    return parsed


class LastResort:
    """Below the security headers, around Starlette's error middleware: an error that escaped
    every handler has had its French 500 sent and its traceback logged; it is not raised to
    the server, which would log it twice and drop the keep-alive connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if scope["type"] != "http" or started:
                return
            # The error page itself failed: plain French words, still with the headers.
            page = '<!doctype html><html lang="fr"><title>Erreur</title><p>Erreur du serveur.</p>'
            await HTMLResponse(page, status_code=500)(scope, receive, send)


MAX_HEADER_BYTES = 16 * 1024


def _refuse(scope: Scope) -> Response | None:
    """What no page can use: NUL bytes in the address, headers larger than browsers send."""
    path = scope.get("path", "")
    if sum(len(k) + len(v) for k, v in scope.get("headers", [])) > MAX_HEADER_BYTES:
        return _refusal(
            path, 431, "entetes_trop_volumineux", "En-têtes de requête trop volumineux."
        )
    query = scope.get("query_string", b"")
    if "\x00" in path or b"\x00" in query or b"%00" in query:  # %00 is how a NUL is written
        return _refusal(path, 400, "requete_invalide", "Caractère nul interdit dans l'adresse.")
    return None


def _refusal(path: str, status: int, code: str, message: str) -> Response:
    """Before any route: the API's one JSON error shape, or plain French text."""
    headers = dict(HEADERS)
    if path.startswith("/api/"):
        error = {"status": status, "code": code, "message": message}
        return JSONResponse({"error": error}, status_code=status, headers=headers)
    page = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Requête invalide</title></head><body><main><h1>Requête invalide</h1>"
        f"<p>{message}</p><p><a href=\"/\">Revenir à l'accueil de l'assistance</a></p>"
        "</main></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=headers)


def same_token(expected: str, sent: object) -> bool:
    """Constant-time equality of two tokens, whatever bytes a client put in `sent`
    (compare_digest refuses str with non-ASCII characters with a TypeError)."""
    if not expected or not isinstance(sent, str):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace"))


def check_csrf(request: Request, submitted: object) -> None:
    """The form's token must be the browser's cookie: another site cannot read either."""
    if not same_token(request.cookies.get(CSRF_COOKIE, ""), submitted):
        raise CsrfRejected(
            "Le formulaire a expiré ou ne vient pas de ce site. "
            "Rechargez la page, puis recommencez."
        )
