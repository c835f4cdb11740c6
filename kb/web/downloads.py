"""Attachments served as download managers expect: length, ranges, validators, the real name."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from starlette.responses import FileResponse, MalformedRangeHeader

# Big reads cost one trip to a worker thread and one socket write each: at 64 KiB (Starlette's
# default) a 6 GiB file is 98,000 of them, and the event loop, not the disk, sets the pace.
CHUNK = 1024 * 1024


class AttachmentResponse(FileResponse):
    """Starlette's FileResponse (single and multiple ranges, If-Range, 416) with strong
    validators from the stored SHA-256 and time, and a Range it cannot read ignored (the
    whole file, as RFC 9110 allows) rather than answered with an English 400."""

    chunk_size = CHUNK

    def __init__(self, path: Path, *, filename: str, sha256: str, added_at: dt.datetime) -> None:
        super().__init__(
            path,
            media_type="application/octet-stream",  # never rendered, never compressed
            headers={
                "content-disposition": content_disposition(filename),
                "etag": f'"{sha256}"',
                "last-modified": format_datetime(added_at.astimezone(dt.UTC), usegmt=True),
                "cache-control": "private, no-store",
                "x-content-type-options": "nosniff",
            },
        )

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []


def content_disposition(filename: str) -> str:
    """RFC 6266: `attachment`, an ASCII fallback for old clients, the real name in
    filename* (RFC 8187, UTF-8, percent-encoded)."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r'[^\x20-\x7e]|["\\%]', "_", folded).strip() or "piece-jointe"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
