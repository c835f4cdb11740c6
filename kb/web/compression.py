"""Compressed answers for clients that ask for them; the others are not slowed down by it."""

from __future__ import annotations

import functools
import gzip

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

VARY = (b"vary", b"Accept-Encoding")
MINIMUM_SIZE = 500  # smaller answers are sent as they are: compressing them gains nothing
# Never gzipped: what is compressed already (gzip would spend CPU to gain nothing, and hide
# the length a browser shows progress with), and attachments, always sent as octet-stream.
NOT_COMPRESSED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "application/octet-stream",
    "application/pdf",
    "application/vnd.rar",
    "application/x-7z-compressed",
    "application/x-bzip2",
    "application/x-rar-compressed",
    "application/x-xz",
    "application/zstd",
    "application/epub+zip",
    "application/java-archive",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "image/heic",
    "image/heif",
    "image/jxl",
)


def precompressed(body: bytes, scope: Scope, media_type: str) -> Response:
    """An answer that comes back often (a kept search answer: the same bytes each time),
    compressed once for the clients that accept gzip. bench.http --gzip, realistic mix, 28
    November (load 0.8): 5,288 requests/s when Starlette's middleware compressed each answer
    again (level 9), 6,444 with them kept compressed (0.63 to 0.78 of a ceiling compressing
    per request). A short run on 2 December at load 7 to 10 gave 0.81 ms of server CPU a
    request kept, 0.93 compressed each time, within that machine's noise."""
    if len(body) >= MINIMUM_SIZE and accepts_gzip(scope):
        headers = {"content-encoding": "gzip", "vary": "Accept-Encoding"}
        return Response(_gzipped(body), media_type=media_type, headers=headers)
    return Response(body, media_type=media_type)


@functools.lru_cache(maxsize=4096)
def _gzipped(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6, mtime=0)


class Compression:
    """Starlette's GZipMiddleware where the request accepts gzip. Elsewhere (scripts, API
    clients, load tools) the answer goes straight out, with the `Vary: Accept-Encoding` that
    tells caches a browser may get another encoding."""

    def __init__(self, app: ASGIApp, minimum_size: int = MINIMUM_SIZE) -> None:
        self.app = app
        self.gzip = GZipMiddleware(
            app, minimum_size=minimum_size, exclude_content_types=NOT_COMPRESSED
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or accepts_gzip(scope):
            await self.gzip(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message["headers"] = list(message.get("headers", ()))
                if not any(name.lower() == b"vary" for name, _ in raw):
                    raw.append(VARY)
            await send(message)

        await self.app(scope, receive, send_with_vary)


def accepts_gzip(scope: Scope) -> bool:
    return any(
        name.lower() == b"accept-encoding" and b"gzip" in value
        for name, value in scope.get("headers", ())
    )
