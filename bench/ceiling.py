"""bench.http's ceiling: plain Starlette under uvicorn, with kb serve's worker count, answering a
real /api/search body of kb as JSON (`/json/{mix}`) and a Jinja2 page as long as kb's `/`
(`/page`); no middleware but gzip with `--gzip`, no search, no database. Its workers listen as
kb serve's do, each on its own socket (SO_REUSEPORT): with one shared socket, a round where
most connections landed on one worker halved the ceiling. Run by bench.http:

    CEILING_BODIES=FILE CEILING_PAGE_BYTES=N CEILING_GZIP=0|1 \
        python -m bench.ceiling --workers 2 --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from kb.web.listening import run_workers

LINK = {"url": "/articles/configurer-un-client-de-messagerie", "category": "E-mails",
        "title": "Configurer un client de messagerie : « Mail » & Thunderbird"}  # fmt: skip


def create_app() -> Starlette:
    """The app of each worker: the bodies (a JSON file {mix: body}), the page's size in bytes
    and gzip or not from CEILING_*."""
    bodies: dict[str, Any] = json.loads(Path(os.environ["CEILING_BODIES"]).read_text())
    size = int(os.environ["CEILING_PAGE_BYTES"])
    environment = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    template = environment.get_template("ceiling.html")
    context: dict[str, Any] = {"title": "Centre d'assistance", "site": "Ceiling", "links": [],
                               "filler": ""}  # fmt: skip
    while len(template.render(context).encode()) < size:  # links, then a filler to the byte
        context["links"].append(LINK)
    context["links"].pop()
    context["filler"] = "x" * (size - len(template.render(context).encode()))

    async def json_body(request: Request) -> Response:
        return JSONResponse(bodies[request.path_params["name"]])

    async def page(request: Request) -> Response:
        return HTMLResponse(template.render(context))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    gzip = [Middleware(GZipMiddleware, minimum_size=500)] * (os.environ["CEILING_GZIP"] == "1")
    routes = [Route("/json/{name}", json_body), Route("/page", page), Route("/healthz", healthz)]
    return Starlette(routes=routes, middleware=gzip)


if __name__ == "__main__":  # python -m bench.ceiling --workers N --host H --port P
    options = dict(zip(sys.argv[1::2], sys.argv[2::2], strict=True))
    run_workers("bench.ceiling:create_app", factory=True, host=options["--host"],
                port=int(options["--port"]), workers=int(options["--workers"]),
                server_header=False)  # fmt: skip
