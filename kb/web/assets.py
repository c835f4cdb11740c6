"""Static files under content-hashed URLs, cached for a year."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from kb.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
_HASHED = re.compile(r"^(?P<stem>[\w.-]+?)\.(?P<hash>[0-9a-f]{10})\.(?P<ext>\w+)$")


class StaticFiles:
    """`url("kb.css")` -> `/static/kb.1a2b3c4d5e.css`; the file is served from its name."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory
        self.hashes = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:10]
            for path in sorted(directory.iterdir())
            if path.is_file()
        }

    def url(self, name: str) -> str:
        stem, _, ext = name.rpartition(".")
        return f"/static/{stem}.{self.hashes[name]}.{ext}"

    async def serve(self, request: Request) -> Response:
        requested = request.path_params["name"]
        match = _HASHED.match(requested)
        name = f"{match['stem']}.{match['ext']}" if match else requested
        if name not in self.hashes:
            raise NotFound("Ce fichier n'existe pas.")
        cache = (
            "public, max-age=31536000, immutable"
            if match and match["hash"] == self.hashes[name]
            else "no-cache"
        )
        return FileResponse(self.directory / name, headers={"cache-control": cache})
