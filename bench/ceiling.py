"""bench.http's ceiling: a plain Starlette app under uvicorn, answering a real /api/search body
of kb as JSON (`/json/{mix}`) and a Jinja2 page as long as kb's `/` (`/page`), no middleware
but gzip with `--gzip`, no search, no database."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

PAGE_TEMPLATE = """\
<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<link rel="stylesheet" href="{{ css }}">
</head>
<body>
<header role="banner"><nav aria-label="{{ title }}"><a href="/">{{ site }}</a></nav></header>
<main id="contenu">
<h1>{{ title }}</h1>
<ul class="links">
{% for link in links %}
<li><a class="button" href="{{ link.url }}">{{ link.title }}</a>
<span>{{ link.category }}</span></li>
{% endfor %}
</ul>
<p>{{ filler }}</p>
</main>
<footer role="contentinfo"><p>{{ site }}</p></footer>
</body>
</html>
"""

_LINK = {
    "url": "/articles/configurer-un-client-de-messagerie",
    "title": "Configurer un client de messagerie : « Mail » & Thunderbird",
    "category": "E-mails",
}


def page_context(size: int, environment: Environment) -> dict[str, Any]:
    """A context that renders to exactly ``size`` bytes: links as needed, then a filler."""
    template = environment.get_template("page.html")
    context: dict[str, Any] = {
        "title": "Centre d'assistance",
        "site": "Ceiling — Assistance",
        "css": "/static/site.0123456789.css",
        "links": [],
        "filler": "",
    }

    def length() -> int:
        return len(template.render(context).encode("utf-8"))

    link_size = len(template.render({**context, "links": [_LINK]}).encode()) - length()
    while length() + link_size <= size:
        context["links"].append(_LINK)
    missing = size - length()
    if missing < 0:
        raise ValueError(f"a {size}-byte page is smaller than the bare template ({length()})")
    context["filler"] = "x" * missing
    assert length() == size
    return context


def create_app(bodies: dict[str, Any], page_bytes: int, gzip: bool = False) -> Starlette:
    environment = Environment(
        loader=DictLoader({"page.html": PAGE_TEMPLATE}),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("page.html")
    context = page_context(page_bytes, environment)

    async def json_endpoint(request: Request) -> Response:
        body = bodies.get(request.path_params["name"])
        if body is None:
            return JSONResponse({"error": "unknown body"}, status_code=404)
        return JSONResponse(body)

    async def page(request: Request) -> Response:
        return HTMLResponse(template.render(context))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    middleware = [Middleware(GZipMiddleware, minimum_size=500)] if gzip else []
    return Starlette(
        routes=[
            Route("/json/{name}", json_endpoint),
            Route("/page", page),
            Route("/healthz", healthz),
        ],
        middleware=middleware,
    )


def create_app_from_env() -> Starlette:
    """For uvicorn's workers: the settings come from CEILING_* variables."""
    bodies = json.loads(Path(os.environ["CEILING_BODIES"]).read_text(encoding="utf-8"))
    return create_app(
        bodies,
        int(os.environ["CEILING_PAGE_BYTES"]),
        gzip=os.environ.get("CEILING_GZIP") == "1",
    )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bodies", type=Path, required=True, help="JSON file: {name: body}")
    parser.add_argument("--page-bytes", type=int, required=True)
    parser.add_argument("--gzip", action="store_true", help="add GZipMiddleware, as kb has")
    args = parser.parse_args(argv)
    os.environ.update(
        CEILING_BODIES=str(args.bodies.resolve()),
        CEILING_PAGE_BYTES=str(args.page_bytes),
        CEILING_GZIP="1" if args.gzip else "0",
    )
    create_app_from_env()  # fail here, in the parent, rather than in each worker
    # The same keyword arguments as kb.cli.cmd_serve gives uvicorn.run.
    uvicorn.run(
        "bench.ceiling:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=False,
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
