"""A multi-GiB file through tus (tuspy, PATCH by PATCH), then attached to a ticket; the same
upload cut in the middle of a PATCH and resumed; beside `dd conv=fsync` and reading it back."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from bench import harness as h
from bench import upload as u


class PatternFile:
    """What tuspy reads (seek, tell, read), made on the fly; counts the bytes read to send."""

    def __init__(self, size: int) -> None:
        self.size, self.pos, self.sent = size, 0, 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.pos = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        data = b"".join(u.pattern_chunks(end, self.pos))
        self.pos, self.sent = end, self.sent + len(data)
        return data


def uploader(client: httpx2.Client, file: PatternFile, chunk: int, url: str | None = None):
    """tuspy's uploader with the session's cookie and CSRF token; on `url`, it asks HEAD first."""
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    headers = {"Cookie": cookie, "X-CSRF-Token": client.cookies["kb_csrf"]}
    tus = TusClient(str(client.base_url).rstrip("/") + "/api/uploads", headers=headers)
    return Uploader(client=tus, file_stream=file, chunk_size=chunk, url=url, retries=3,
                    retry_delay=0.2, metadata={"filename": "export.bin"})  # fmt: skip


def attach(client: httpx2.Client, data: Path, url: str, size: int) -> Path:
    """The finished upload named in a new ticket: the stored file, checked."""
    _, stored, sha256 = u.post_ticket(client, data, {"televersement": url.rsplit("/", 1)[1]})
    expected = hashlib.sha256()
    for piece in u.pattern_chunks(size):
        expected.update(piece)
    if stored.stat().st_size != size or sha256 != expected.hexdigest():
        raise RuntimeError(f"{stored}: {stored.stat().st_size} bytes, SHA-256 {sha256}")
    return stored


def clean(client: httpx2.Client, data: Path, size: int, chunk: int) -> Path:
    (up := uploader(client, PatternFile(size), chunk)).upload()
    return attach(client, data, up.url, size)


def cut_and_resumed(client: httpx2.Client, data: Path, size: int, chunk: int) -> int:
    """Cut in the middle of the PATCH past the file's middle, resumed by a new uploader that
    asks the offset (HEAD), as a reloaded page does: the bytes sent twice."""
    file = PatternFile(size)
    up = uploader(client, file, chunk)
    up.set_url(up.create_url())
    while up.offset < size // 2 // chunk * chunk:
        up.upload_chunk()
    length = min(chunk, size - up.offset)

    def body() -> Iterator[bytes]:
        file.seek(up.offset)
        yield file.read(length // 2 + 12_345)
        raise ConnectionAbortedError  # the client stops mid-body: its connection is closed

    headers = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": client.cookies["kb_csrf"],
               "Upload-Offset": str(up.offset), "Content-Length": str(length),
               "Content-Type": "application/offset+octet-stream"}  # fmt: skip
    with contextlib.suppress(ConnectionAbortedError, httpx2.HTTPError):
        client.patch(up.url, content=body(), headers=headers, timeout=None)
    resumed = uploader(client, file, chunk, up.url)
    resumed.upload()
    attach(client, data, up.url, size).unlink()
    return file.sent - size


def main() -> int:
    parser = u.arguments("tus", __doc__)
    parser.add_argument("--chunk-mb", type=int, default=8, help="MiB a PATCH (8)")
    args = parser.parse_args()
    chunk = args.chunk_mb * h.MIB
    runs = []
    with u.server("tus", args) as (data, size, client, kb):
        clean(client, data, 4 * h.MIB, chunk).unlink()  # imports, thread pool, SQLite
        for i in range(args.runs):
            print(f"run {i + 1}: {size / h.GIB:g} GiB by tus, cut, dd, cat…", file=sys.stderr)
            dd_first = u.dd(data / "dd.bin", size) if i % 2 else None  # dd and kb in turn
            u.settle()
            stored, run = u.measured(kb, clean, client, data, size, chunk)
            run["cat_s"] = u.cat(stored)
            stored.unlink()
            twice, cut = u.measured(kb, cut_and_resumed, client, data, size, chunk)
            run.update({f"cut_{k}": v for k, v in cut.items()}, resent_mib=twice / h.MIB)
            run["dd_s"] = dd_first or u.dd(data / "dd.bin", size)
            run["ratio"] = run["s"] / run["dd_s"]
            runs.append(run)
    gib = size / h.GIB
    labels = {**u.LABELS, "cut_s": "cut mid-PATCH and resumed, s", "cut_cpu_s": "  server CPU, s",
              "cut_growth_mb": "  server RSS +MB", "resent_mib": "  sent twice, MiB"}  # fmt: skip
    title = f"{gib:.3g} GiB by tus, {args.chunk_mb} MiB a PATCH, then a ticket; {args.runs} run(s)"
    m = u.report(title, runs, labels)
    resent = m["resent_mib"]["median"]
    h.write_result("tus", args, {"size_gib": gib, "chunk_mib": args.chunk_mb, **m}, [
        *u.summary(f"{gib:.3g} GiB by tus + ticket", m),
        h.row("cut and resumed: s, MiB sent twice", f"{h.cell(m['cut_s'])}, {resent:.2f}", "",
              f"≤ {args.chunk_mb} MiB", resent <= args.chunk_mb),
    ])  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
