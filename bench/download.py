"""A multi-GiB attachment downloaded by curl as a browser asks, with `identity`, and resumed past
its middle, beside `cat FILE > /dev/null`; the file's pages dropped before each step."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys

from bench import harness as h
from bench.upload import arguments, cat, evict, measured, multipart, report, server

WAYS = {"browser (gzip, deflate, br)": ("gzip, deflate, br", False),
        "Accept-Encoding: identity": ("identity", False),
        "resumed past the middle (--continue-at)": ("gzip, deflate, br", True)}  # fmt: skip


def curl(url: str, cookie: str, encoding: str, start_at: int) -> dict[str, object]:
    """One download to /dev/null: what came back besides the time."""
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--output", "/dev/null", "--dump-header",
         "-", "--header", f"Cookie: {cookie}", "--header", f"Accept-Encoding: {encoding}",
         *(["--continue-at", str(start_at)] if start_at else []), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = done.stdout.lower().splitlines()[1:]  # the status line, then the headers
    headers = dict(line.split(": ", 1) for line in lines if ": " in line)
    return {"length": "content-length" in headers,
            "encoding": headers.get("content-encoding", "-").strip()}  # fmt: skip


def main() -> int:
    args = arguments("download", __doc__, runs=3).parse_args()
    runs: list[dict[str, float]] = []
    seen: dict[str, dict[str, object]] = {}
    with server("download", args) as (data, size, client, kb):
        reference, stored, _ = multipart(client, data, size)
        with contextlib.closing(sqlite3.connect(data / "kb.sqlite3")) as db:
            [(attachment,)] = db.execute("SELECT id FROM attachments").fetchall()
        url = f"{kb.base}/tickets/{reference}/pieces-jointes/{attachment}"
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        for i in range(args.runs):
            print(f"run {i + 1}: cat, then curl {len(WAYS)} ways…", file=sys.stderr)
            run = {"cat_s": cat(stored)}
            for name, (encoding, resume) in WAYS.items():
                evict(stored)
                start_at = size // 2 + 12_345 if resume else 0
                seen[name], m = measured(kb, curl, url, cookie, encoding, start_at)
                run.update({f"{name}: {k}": v for k, v in m.items()})
                run[f"{name}: × cat"] = m["s"] / run["cat_s"]
            runs.append(run)
    gib, browser = size / h.GIB, next(iter(WAYS))
    labels = {"cat_s": "cat FILE > /dev/null, s"}
    for way in WAYS:
        labels |= {f"{way}: s": f"{way}, s", f"{way}: × cat": "  × cat",
                   f"{way}: cpu_s": "  server CPU, s",
                   f"{way}: growth_mb": "  server RSS +MB"}  # fmt: skip
    m = report(f"download of a {gib:.3g} GiB attachment, cold each time, {args.runs} run(s)",
               runs, labels)  # fmt: skip
    for way, got in seen.items():
        print(f"  {way}: Content-Length {got['length']}, Content-Encoding {got['encoding']}")
    ratio = m[f"{browser}: × cat"]["median"]
    h.write_result("download", args, {"size_gib": gib, **m, "headers": seen}, [h.row(
        f"{gib:.3g} GiB download as a browser: s (× cat)", f"{h.cell(m[browser + ': s'])} "
        f"(×{ratio:.2f})", f"cat {h.cell(m['cat_s'])}", "≤ 1.2, Content-Length",
        ratio <= 1.2 and bool(seen[browser]["length"]),
    )])  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
