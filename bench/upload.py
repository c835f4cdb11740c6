"""A multi-GiB attachment in one multipart form, beside `dd conv=fsync` and reading it back."""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2

from bench import harness as h

BOUNDARY = "kb-banc-envoi-0123456789"
# 1 MiB of a repeating non-zero pattern; the same bytes object is sent again and again.
PATTERN = (b"\x01\x02kb-banc-piece-jointe\xfe\xff" * (h.MIB // 24 + 1))[: h.MIB]
TARGET_RATIO, TARGET_GROWTH_MB, SETTLE_SECONDS = 1.5, 100.0, 10.0


def pattern_chunks(size: int, start: int = 0) -> Iterator[bytes]:
    """Bytes `start:size` of a file whose byte i is PATTERN[i % MiB]."""
    while start < size:
        inner = start % h.MIB
        piece = PATTERN[inner : inner + min(h.MIB - inner, size - start)]
        start += len(piece)
        yield piece


def arguments(name: str, doc: str | None, runs: int = 1) -> argparse.ArgumentParser:
    """The upload benches' command line: --size-gb, --runs, --dir, --json and --tree."""
    parser = h.parser(f"bench.{name}", doc)
    parser.add_argument("--size-gb", type=float, default=2.0, help="GiB sent (2)")
    parser.add_argument("--runs", type=int, default=runs, help=f"runs, median kept ({runs})")
    parser.add_argument("--dir", type=Path, help="parent of the scratch folder (its disk)")
    return parser


@contextlib.contextmanager
def server(name: str, args: argparse.Namespace) -> Iterator[tuple[Path, int, httpx2.Client, Any]]:
    """kb serve --workers 1 in a scratch folder with room for the file twice, an account
    logged in: (data dir, size, client, server)."""
    size = int(args.size_gb * h.GIB) // h.MIB * h.MIB  # whole MiB: dd writes bs=1M blocks
    with h.scratch(name, 2 * size + h.GIB, args.dir) as work:
        env = h.kb_env(work, KB_MAX_UPLOAD_BYTES=str(size + 64 * h.MIB))
        h.kb(args.tree, env, "build")
        kb = h.kb_serve(args.tree, env, work)
        try:
            with httpx2.Client(base_url=kb.base, timeout=60) as client:
                h.account(args.tree, env, client)
                yield work / "data", size, client, kb
        finally:
            kb.stop()


def ticket_form(client: httpx2.Client) -> dict[str, str]:
    """A ticket's fields, with the session's CSRF token and a new jeton."""
    fields = {"categorie": "abonnement", "sujet": "Banc d'essai", "message": "Voici l'export."}
    return {"csrf": client.cookies["kb_csrf"], "jeton": uuid.uuid4().hex, **fields}


def post_ticket(client: httpx2.Client, data: Path, form: dict[str, str] | None = None,
                **request: Any) -> tuple[str, Path, str]:  # fmt: skip
    """POST /tickets, with `form` added to a ticket's fields or a body of the caller's:
    (reference, stored file, its SHA-256 in the database)."""
    if form is not None:
        request["data"] = {**ticket_form(client), **form}
        request["files"] = [("fichiers", ("", b"", "application/octet-stream"))]
    response = client.post("/tickets", timeout=None, **request)
    location = response.headers.get("location", "")
    if response.status_code != 303 or not location.startswith("/tickets/T-"):
        raise RuntimeError(f"POST /tickets: {response.status_code} {response.text[:300]}")
    reference = location.split("?")[0].rsplit("/", 1)[1]
    with contextlib.closing(sqlite3.connect(data / "kb.sqlite3")) as db:
        [(stored_as, sha256)] = db.execute(
            "SELECT a.stored_as, a.sha256 FROM attachments a JOIN messages m ON m.id ="
            " a.message_id JOIN tickets t ON t.id = m.ticket_id WHERE t.reference = ?",
            (reference,),
        ).fetchall()
    return reference, data / "attachments" / stored_as, sha256


def multipart(client: httpx2.Client, data: Path, size: int) -> tuple[str, Path, str]:
    """One form with one attachment of `size` bytes, generated as it is sent."""
    head = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in ticket_form(client).items())  # fmt: skip
    head += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fichiers"; '
             'filename="export.bin"\r\nContent-Type: application/octet-stream\r\n\r\n')  # fmt: skip
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head.encode()
        yield from pattern_chunks(size)
        yield tail

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}",
               "content-length": str(len(head.encode()) + size + len(tail))}  # fmt: skip
    reference, stored, sha256 = post_ticket(client, data, content=body(), headers=headers)
    if stored.stat().st_size != size:
        raise RuntimeError(f"{reference}: {stored.stat().st_size} bytes stored, {size} sent")
    return reference, stored, sha256


def measured(kb: h.Server, what: Any, *args: Any) -> tuple[Any, dict[str, float]]:
    """`what(*args)` timed, with the serving process's CPU seconds and peak RSS above idle."""
    pid = kb.workers()[0]
    idle = h.rss_mb(pid)
    h.reset_peak(pid)
    os.sync()
    cpu, start = kb.cpu(), time.perf_counter()
    result = what(*args)
    seconds, cpu = time.perf_counter() - start, kb.cpu() - cpu
    return result, {"s": seconds, "cpu_s": cpu, "growth_mb": h.rss_mb(pid, "VmHWM") - idle}


def settle() -> None:
    """Before each timed write, kb's or dd's, the same state: earlier writes settled."""
    os.sync()
    time.sleep(SETTLE_SECONDS)


def dd(target: Path, size: int) -> float:
    """`dd if=/dev/zero bs=1M conv=fsync` of `size` bytes: seconds (the file removed after)."""
    settle()
    start = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size // h.MIB}",
                    "conv=fsync"], check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def evict(path: Path) -> None:
    """The file's pages out of the page cache (no root needed): later reads start cold."""
    with path.open("rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def cat(path: Path) -> float:
    """`cat FILE > /dev/null`, its pages dropped first: the disk's read speed for it."""
    evict(path)
    start = time.perf_counter()
    with path.open("rb") as source, open(os.devnull, "wb") as sink:
        subprocess.run(["cat"], stdin=source, stdout=sink, check=True)
    return time.perf_counter() - start


def report(title: str, runs: list[dict[str, float]], labels: dict[str, str]) -> dict[str, Any]:
    """Per measure: the median, the spread and every run, printed; returned by key."""
    m = {k: h.median_spread([r[k] for r in runs]) for k in runs[0]}
    print(title)
    for key, label in labels.items():
        fmt = ".1f" if key.endswith("_mb") else ".2f"
        every = "  ".join(format(v, fmt) for v in m[key]["runs"]) if len(runs) > 1 else ""
        print(f"  {label:<44} {h.cell(m[key], fmt):>20}  {every}")
    return m


def summary(what: str, m: dict[str, Any]) -> list[dict[str, str]]:
    """bench.all's rows: the time beside dd's, the server's CPU and memory growth."""
    ratio, growth = m["ratio"]["median"], m["growth_mb"]["median"]
    return [
        h.row(f"{what}: s (kb/dd)", f"{h.cell(m['s'])} (×{ratio:.2f})", f"dd {h.cell(m['dd_s'])}",
              f"≤ {TARGET_RATIO}", ratio <= TARGET_RATIO),
        h.row(f"{what}: server CPU s, memory growth MB", f"{h.cell(m['cpu_s'])}, {growth:.1f}",
              "", f"< {TARGET_GROWTH_MB:.0f} MB", growth < TARGET_GROWTH_MB),
    ]  # fmt: skip


LABELS = {"s": "kb, s", "dd_s": "dd conv=fsync, s", "ratio": "kb / dd",
          "cat_s": "cat of the stored file (cold), s", "cpu_s": "server CPU, s",
          "growth_mb": "server peak RSS above idle, MB"}  # fmt: skip


def main() -> int:
    args = arguments("upload", __doc__).parse_args()
    runs: list[dict[str, float]] = []
    with server("upload", args) as (data, size, client, kb):
        multipart(client, data, 4 * h.MIB)[1].unlink()  # imports, thread pool, SQLite
        for i in range(args.runs):
            print(f"run {i + 1}: {size / h.GIB:g} GiB to kb and dd, cat…", file=sys.stderr)
            dd_first = dd(data / "dd.bin", size) if i % 2 else None
            settle()
            (_, stored, _), run = measured(kb, multipart, client, data, size)
            run["cat_s"] = cat(stored)
            stored.unlink()
            run["dd_s"] = dd_first or dd(data / "dd.bin", size)
            run["ratio"] = run["s"] / run["dd_s"]
            runs.append(run)
    gib = size / h.GIB
    m = report(f"upload of {gib:.3g} GiB in one form, {args.runs} run(s)", runs, LABELS)
    h.write_result("upload", args, {"size_gib": gib, **m}, summary(f"{gib:.3g} GiB form", m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
