"""`kb serve --reload`: rebuild on every content change, and reload the pages open in browsers."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TextIO

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from kb.errors import KbError
from kb.knowledge.build import ContentErrors, build, check
from kb.web.services import Services, bind

log = logging.getLogger("kb.preview")
EVENTS_URL = "/__apercu/evenements"


class Preview:
    """What the open pages need to know: a version that changes, and the last build's errors."""

    def __init__(self) -> None:
        self.boot = uuid.uuid4().hex  # a restarted server (Python code changed) is a change too
        self.version = 0
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def changed(self) -> None:
        self.version += 1

    def rebuild(self, content_dir: Path, index_dir: Path, out: TextIO | None = None) -> None:
        """Build, keep what the pages show, and tell the terminal (problems set apart)."""
        try:
            report = build(content_dir, index_dir)
        except ContentErrors as exc:
            # What kb check would say: the build stopped early, and warnings matter too.
            problems = check(content_dir)[1] or exc.problems + exc.warnings
            self.errors = [str(p) for p in problems if not p.warning]
            self.warnings = [str(p) for p in problems if p.warning]
            summary = "la dernière version valide reste affichée"
        except KbError as exc:  # a damaged index, say: still watching, still serving
            self.errors, self.warnings = [exc.message], []
            summary = "la dernière version valide reste affichée"
        else:
            self.errors = []
            self.warnings = [str(p) for p in report.warnings]
            summary = f"index reconstruit ({report.summary()})"
        print_problems(out or sys.stderr, self.errors, self.warnings, summary)


def print_problems(
    out: TextIO, errors: Sequence[str], warnings: Sequence[str], summary: str
) -> None:
    """A block of its own, framed and timed, so that it stands out of the server's log lines."""
    counts = [f"{len(errors)} erreur(s)"] if errors else []
    counts += [f"{len(warnings)} avertissement(s)"] if warnings else []
    head = f"── Aperçu {time.strftime('%H:%M:%S')} : {', '.join(counts) or 'contenu valide'} ──"
    lines = ["", head]
    lines += [f"  erreur : {line}" for line in errors]
    lines += [f"  avertissement : {line}" for line in warnings]
    lines += [f"  {summary}", "─" * min(len(head), 78)]
    print("\n".join(lines), file=out, flush=True)


def routes(services: Services) -> list[Route]:
    return [Route(EVENTS_URL, bind(services, events), name="preview_events")]


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

    def rebuild() -> None:
        preview.rebuild(settings.content_dir, settings.index_dir)

    # The problems of the content as it is now, before any edit: the pages show them at once.
    await anyio.to_thread.run_sync(rebuild)
    preview.changed()
    # A short rust_timeout: on shutdown the watcher's thread notices within half a second.
    async for changes in awatch(
        content_dir, templates_dir, debounce=200, step=50, rust_timeout=500
    ):
        paths = [Path(p) for _, p in changes]
        if any(content_dir in p.parents or p == content_dir for p in paths):
            await anyio.to_thread.run_sync(rebuild)
        preview.changed()
