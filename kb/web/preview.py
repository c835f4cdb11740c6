"""`kb serve --reload`: rebuild on every content change, and reload the pages open in browsers."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from kb.errors import KbError
from kb.knowledge.build import ContentErrors, build
from kb.web.services import Services, bind

log = logging.getLogger("kb.preview")
EVENTS_URL = "/__apercu/evenements"


class Preview:
    """What the open pages need to know: a version that changes, and the last build's errors."""

    def __init__(self) -> None:
        self.boot = uuid.uuid4().hex  # a restarted server (Python code changed) is a change too
        self.version = 0
        self.errors: list[str] = []

    def changed(self) -> None:
        self.version += 1


def routes(services: Services) -> list[Route]:
    return [Route(EVENTS_URL, bind(services, events))]


async def events(services: Services, request: Request) -> Response:
    """Server-sent events: one `reload` each time the content or the templates change."""
    preview = services.preview
    if preview is None:
        return Response(status_code=404)

    async def stream() -> AsyncIterator[str]:
        seen = preview.version
        yield f"retry: 1000\nevent: hello\ndata: {preview.boot}\n\n"
        while not await request.is_disconnected():
            if preview.version != seen:
                seen = preview.version
                yield "data: reload\n\n"
            await anyio.sleep(0.2)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-store"}
    )


async def watch(services: Services, templates_dir: Path) -> None:
    """Rebuild the index incrementally on each change; the last good version keeps serving."""
    from watchfiles import awatch

    settings, preview = services.settings, services.preview
    assert preview is not None  # watched only in the editors' preview
    content_dir = settings.content_dir.resolve()
    # A short rust_timeout: on shutdown the watcher's thread notices within half a second.
    async for changes in awatch(
        content_dir, templates_dir, debounce=200, step=50, rust_timeout=500
    ):
        paths = [Path(p) for _, p in changes]
        if any(content_dir in p.parents or p == content_dir for p in paths):
            try:
                report = await anyio.to_thread.run_sync(
                    lambda: build(settings.content_dir, settings.index_dir)
                )
            except ContentErrors as exc:
                preview.errors = [str(p) for p in exc.problems]
                print("\n".join(preview.errors), file=sys.stderr, flush=True)
                print("Aperçu : la dernière version valide reste affichée.", file=sys.stderr)
            except KbError as exc:  # a damaged index, say: still watching, still serving
                preview.errors = [exc.message]
                print(exc.message, file=sys.stderr, flush=True)
            else:
                preview.errors = []
                print(f"Index reconstruit : {report.summary()}", file=sys.stderr, flush=True)
        preview.changed()
