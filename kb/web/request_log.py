"""Each request: its id (the proxy's X-Request-ID or a new one), one log line, its metrics."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb import logs
from kb.web.metrics import UNMATCHED, Metrics

log = logging.getLogger("kb.request")

HEADER = b"x-request-id"
# What a proxy's id looks like (nginx's $request_id, a UUID, a trace id): nothing that could
# forge a log line or carry markup.
VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")
# Bodies that are files: their bytes are the upload metrics.
UPLOAD_TYPES = (b"multipart/form-data", b"application/offset+octet-stream")
# Probes that come every few seconds: logged only when they fail.
QUIET = ("/healthz", "/livez", "/readyz", "/metrics")


class _Context(logs.RequestContext):
    """Lines logged during a request name its route and account as soon as they are known."""

    def __init__(self, request_id: str, scope: Scope) -> None:
        super().__init__(request_id)
        self.scope = scope

    def fields(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": _route(self.scope, None),
            "account_id": _account_id(self.scope),
        }


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            candidate = value.decode("latin-1").strip()
            if VALID_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(16).hex()


class RequestLog:
    """Outermost: times the whole answer, even one refused before any route."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context = _Context(request_id(scope), scope)
        token = logs.current.set(context)
        status = 500  # unless an answer starts
        received = 0
        upload = _is_upload(scope)
        counting = False
        metrics = self.metrics

        async def receive_counted() -> Message:
            nonlocal received, counting
            if upload and not counting:
                counting = True
                metrics.active_uploads.inc()
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                received += size
                if upload and size:
                    metrics.upload_bytes.inc(size)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((HEADER, context.request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive_counted, send_with_id)
        finally:
            if counting:
                metrics.active_uploads.dec()
            route = _route(scope, UNMATCHED)
            seconds = time.perf_counter() - started
            method = scope["method"]
            metrics.request_done(method, route, status, seconds)
            path = scope.get("path", "")
            level = logging.DEBUG if path in QUIET and status < 400 else logging.INFO
            if status >= 500:
                level = logging.ERROR
            if log.isEnabledFor(level):
                # The record made here: logging's search for the calling line would name
                # this one anyway, and costs more than the rest of the line.
                record = logging.LogRecord(
                    log.name, level, __file__, 0, "%s %s %s", (method, path, status), None
                )
                client = scope.get("client")
                record.method, record.path, record.status = method, path, status
                record.duration_ms = round(seconds * 1000, 1)
                record.client = client[0] if client else None
                record.bytes_in = received or None
                log.handle(record)
            logs.current.reset(token)


def _is_upload(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.lower().startswith(UPLOAD_TYPES)
    return False


def _route(scope: Scope, otherwise: str | None) -> str | None:
    """The route's template (`/articles/{slug}`), never the raw path: bounded labels, no token."""
    return getattr(scope.get("route"), "path", None) or otherwise


def _account_id(scope: Scope) -> int | None:
    account = scope.get("state", {}).get("account")
    return getattr(account, "id", None)
