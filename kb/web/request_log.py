"""Each request: its id (the proxy's X-Request-ID or a new one), one log line, its metrics."""

from __future__ import annotations

import logging
import os
import re
import threading
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

    def add_to(self, entry: dict[str, Any]) -> None:
        entry["request_id"] = self.request_id
        route = _route(self.scope, None)
        if route is not None:
            entry["route"] = route
        account_id = _account_id(self.scope)
        if account_id is not None:
            entry["account_id"] = account_id


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            candidate = value.decode("latin-1").strip()
            if VALID_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(16).hex()


# A request line's record, by level and thread: see _record. Emptied in a forked child.
_MADE: dict[tuple[int, int], dict[str, Any]] = {}
os.register_at_fork(after_in_child=_MADE.clear)


def _record(level: int, args: tuple[Any, ...], fields: dict[str, Any]) -> logging.LogRecord:
    """A request line's log record, made from a first one's attributes: what LogRecord works
    out for each record (this file's name and module, the level's name, the thread, the
    process) is the same for every line of a thread. bench.http, never-seen searches: the
    request line took about 30 µs of a worker's CPU a request (0.42 ms with it, 0.39 without),
    the same line written straight to stdout almost nothing; the record and its way through
    logging were the cost, and a record copied takes half the time (bench/README.md)."""
    key = (level, threading.get_ident())
    made = _MADE.get(key)
    if made is None:
        made = _MADE[key] = logging.LogRecord(
            log.name, level, __file__, 0, "%s %s %s", (), None
        ).__dict__
    record = logging.LogRecord.__new__(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(made)
    created = time.time()
    attributes["created"] = created
    attributes["msecs"] = int((created - int(created)) * 1000) + 0.0
    attributes["relativeCreated"] = made["relativeCreated"] + (created - made["created"]) * 1000
    attributes["args"] = args
    attributes.update(fields)
    return record


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
                client = scope.get("client")
                fields = {
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "client": client[0] if client else None,
                    "bytes_in": received or None,
                }
                log.handle(_record(level, (method, path, status), fields))
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
