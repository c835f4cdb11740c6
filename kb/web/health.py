"""Health for load balancers: liveness, and readiness that holds while articles and search work."""

from __future__ import annotations

from typing import Any

import anyio
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kb.errors import KbError
from kb.web.services import Services, bind

NO_STORE = {"cache-control": "no-store"}


async def live(services: Services, request: Request) -> Response:
    """The process answers: restart it only when this fails."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


async def ready(services: Services, request: Request) -> Response:
    """200 while this replica can serve articles and search, even with the database down (its
    state is in the body: pages that need it answer a French 503 meanwhile); 503 without an
    index (a new replica still building its first one)."""
    body: dict[str, Any] = {"status": "ok"}
    status = 200
    try:
        snapshot = services.snapshot()
        body["index"] = snapshot.generation.name
        body["content_version"] = snapshot.meta.get("content_version")
    except KbError as exc:
        body.update(index=None, content_version=None, reason=exc.message)
        body["status"], status = "unavailable", 503
    body.update(services.publisher.status())
    body["database"] = await _database(services.engine, services.settings.db_connect_timeout + 1)
    if body["database"] != "ok" and status == 200:
        body["status"] = "degraded"
    return JSONResponse(body, status_code=status, headers=NO_STORE)


async def _database(engine: Any, seconds: float) -> str:
    """'ok', or 'unavailable': never longer than the connect timeout (and a second)."""
    with anyio.move_on_after(seconds):
        try:
            await anyio.to_thread.run_sync(_ping, engine, abandon_on_cancel=True)
            return "ok"
        except Exception:
            return "unavailable"
    return "unavailable"


def _ping(engine: Any) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


def routes(services: Services) -> list[Route]:
    return [
        Route("/livez", bind(services, live), name="livez"),
        Route("/readyz", bind(services, ready), name="readyz"),
        Route("/healthz", bind(services, ready), name="healthz"),
    ]
