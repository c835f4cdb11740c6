"""Request bodies bounded before they are read: a size per route, and a clock on every body."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.errors import BadRequest, KbError

# The largest body a person types without files (login, vote, status, password): a login
# form is 200 bytes, a ticket's text fields together 1 MiB at most (they go with the files).
FORM_BYTES = 64 * 1024
# A small form arrives whole within this, even on a poor mobile link; a body that drips a
# byte at a time is an attacker holding a connection and a file descriptor.
FORM_SECONDS = 20.0
# A large body (attachments, resumable uploads) may take hours, but never stops: no byte
# for this long is a connection gone without a word.
IDLE_SECONDS = 60.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Refuse = Callable[[Request, Exception], Awaitable[Response]]


class BodyTooLarge(KbError):
    status = 413
    code = "corps_trop_volumineux"


class BodyTimeout(KbError):
    status = 408
    code = "delai_depasse"


def too_large(limit: int) -> BodyTooLarge:
    if limit == 0:
        return BodyTooLarge("Cette adresse n'accepte pas de contenu dans la requête.")
    return BodyTooLarge(
        f"Requête trop volumineuse : {limit:,} octets au plus ici.".replace(",", "\u202f")
    )


def timed_out() -> BodyTimeout:
    return BodyTimeout(
        "L'envoi s'est interrompu : la requête n'est pas arrivée à temps. Réessayez."
    )


@dataclass
class BodyPolicy:
    """How many bytes each route may receive; routes that take no body receive none."""

    routes: list[tuple[BaseRoute, int]]
    form_seconds: float = FORM_SECONDS
    idle_seconds: float = IDLE_SECONDS
    unmatched: int = FORM_BYTES
    sizes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_routes(cls, routes: Iterable[BaseRoute], sizes: Mapping[str, int]) -> BodyPolicy:
        """`sizes` names the routes allowed more than a form; a name that matches no route
        is a mistake made when a route was renamed, caught at start rather than in use."""
        table: list[tuple[BaseRoute, int]] = []
        named = set()
        for route in routes:
            name = getattr(route, "name", None)
            if isinstance(name, str) and name in sizes:
                table.append((route, sizes[name]))
                named.add(name)
            elif isinstance(route, Route) and route.methods and not (route.methods & BODY_METHODS):
                table.append((route, 0))
            else:
                table.append((route, FORM_BYTES))
        missing = set(sizes) - named
        if missing:
            raise ValueError(f"body sizes for unknown routes: {', '.join(sorted(missing))}")
        return cls(table, sizes=dict(sizes))

    def limit_for(self, scope: Scope) -> int:
        """The limit of the route that serves this method, else of one with the path (405)."""
        partial = None
        for route, limit in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return limit
            if match is Match.PARTIAL and partial is None:
                partial = limit
        return self.unmatched if partial is None else partial


class BodyLimits:
    """Refuses a declared body larger than the route takes before reading a byte (413), cuts
    a body that grows past it while streamed, and ends a body that stalls (408)."""

    def __init__(self, app: ASGIApp, policy: BodyPolicy, refuse: Refuse) -> None:
        self.app = app
        self.policy = policy
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: str | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value.decode("latin-1")
            elif name == b"transfer-encoding":
                chunked = True
        if (declared is None or declared == "0") and not chunked:
            await self.app(scope, receive, send)  # no body: nothing to bound
            return
        policy = self.policy
        limit = policy.limit_for(scope)
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            await self._answer(scope, receive, send, BadRequest("En-tête Content-Length invalide."))
            return
        if declared is not None and int(declared) > limit:
            await self._answer(scope, receive, send, too_large(limit))
            return
        small = limit <= FORM_BYTES
        started = time.monotonic()
        received = 0
        done = False
        cut = False

        async def bounded_receive() -> Message:
            nonlocal received, done, cut
            if done:  # the body is in; what follows is the wait for a disconnect
                return await receive()
            wait = policy.idle_seconds
            if small:
                wait = min(wait, max(0.0, started + policy.form_seconds - time.monotonic()))
            with anyio.move_on_after(wait):
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    done = not message.get("more_body", False)
                    if received > limit:
                        cut = done = True
                        raise too_large(limit)
                else:
                    done = True
                return message
            cut = done = True
            raise timed_out()

        async def closing_send(message: Message) -> None:
            # A connection whose body was not read to its end (cut, or refused before it was
            # read) carries no other request: closed at once, not after the keep-alive wait.
            if (cut or not done) and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        await self.app(scope, bounded_receive, closing_send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, error: KbError) -> None:
        response = await self.refuse(Request(scope, receive), error)
        response.headers["connection"] = "close"
        await response(scope, receive, send)
