"""bench.http's ceiling: plain Starlette under uvicorn, with kb serve's worker count, answering a
real /api/search body of kb as JSON (`/json/{mix}`) and a Jinja2 page as long as kb's `/`
(`/page`); no middleware but gzip with `--gzip`, no search, no database."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

LINK = {"url": "/articles/configurer-un-client-de-messagerie", "category": "E-mails",
        "title": "Configurer un client de messagerie : « Mail » & Thunderbird"}  # fmt: skip


def create_app() -> Starlette:
    """The app of each worker, its settings from CEILING_* (set by main)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bodies", type=Path, required=True, help="JSON file: {mix: body}")
    parser.add_argument("--page-bytes", type=int, required=True)
    parser.add_argument("--gzip", action="store_true", help="add GZipMiddleware")
    args = parser.parse_args()
    os.environ.update(CEILING_BODIES=str(args.bodies.resolve()), CEILING_GZIP=str(int(args.gzip)),
                      CEILING_PAGE_BYTES=str(args.page_bytes))  # fmt: skip
    uvicorn.run("bench.ceiling:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, server_header=False, log_level="info")  # fmt: skip


if __name__ == "__main__":
    main()
