"""Every benchmark, one after the other, then one table of their key figures and targets.

    python -m bench.all [--quick] [--only NAME ...] [--skip NAME ...] [--strict]

Runs, each as its own process (``python -m bench.<name>``), so that one failing or crashing
does not stop the others:

- ``relevance``: MRR@10 of kb beside SQLite FTS5, shipped content and a real FAQ;
- ``speed``: builds and in-process search latency, kb beside FTS5 (shipped, demarches,
  alwaysdata, 5,000 generated articles);
- ``http``: ``kb serve`` throughput and latency beside a plain Starlette ceiling;
- ``upload``: a 2 GiB attachment, time beside ``dd`` and the server's memory;
- ``tus``: the same through resumable uploads, a resume, the hash state;
- ``load``: 64 users for 60 s on SQLite then PostgreSQL, with a rebuild, tickets counted.

Each one's own report is printed as it comes (its progress goes to stderr); then the
summary: a row per key figure, kb's value, the baseline measured beside it in the same run,
the target and whether it is met. ``--quick`` runs small sizes and short durations (a smoke
run of the whole chain, not figures to quote). A benchmark that exits non-zero, runs past
its time limit or whose figures cannot be read from its report is marked FAILED, and the
exit status is 1. ``--strict`` also exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    bench: str
    measure: str
    kb: str
    baseline: str = ""
    target: str = ""
    verdict: str = ""  # "met", "MISSED", "" (no target), "FAILED"


@dataclass
class Bench:
    name: str
    full: list[str]
    quick: list[str]
    timeout_s: float  # full run; quick runs get a third (at least 5 minutes)
    parse: Callable[[str], list[Row]]
    about: str = ""


@dataclass
class Ran:
    bench: Bench
    status: int | None  # None: stopped at its time limit
    seconds: float
    stdout: str
    rows: list[Row] = field(default_factory=list)
    problem: str = ""


class FiguresMissing(Exception):
    """A report did not have the lines its parser looks for."""


# --------------------------------------------------------------------------- parsers


def _need(found: list[Row], what: str) -> list[Row]:
    if not found:
        raise FiguresMissing(f"no {what} in the report")
    return found


def parse_relevance(out: str) -> list[Row]:
    rows = []
    name = None
    for line in out.splitlines():
        header = re.match(r"^(.+?): (\d+) articles, (\d+) judged queries", line)
        if header:
            name = f"{header[1]} ({header[3]} queries)"
        m = re.match(r"^all\s+\d+\s+([\d.]+) ([<= ]) ([\d.]+)\s+([\d.]+) ([<= ]) ([\d.]+)", line)
        if m and name:
            kb, fts = float(m[1]), float(m[3])
            rows.append(
                Row(
                    "relevance",
                    f"{name}: MRR@10 / S@1",
                    f"{kb:.3f} / {float(m[4]):.3f}",
                    f"FTS5 {fts:.3f} / {float(m[6]):.3f}",
                    "MRR@10 ≥ FTS5",
                    "met" if kb >= fts - 1e-9 else "MISSED",
                )
            )
            name = None
    return _need(rows, "'all' row")


def parse_speed(out: str) -> list[Row]:
    rows = []
    corpus = ""
    values: dict[str, tuple[str, str, str]] = {}

    def flush() -> None:
        if not corpus or not values:
            return

        def row(label: str, keys: tuple[str, ...]) -> None:
            present = [values[k] for k in keys if k in values]
            if not present:
                return
            targets = [t for _, _, t in present if t]
            verdict = ""
            if targets:
                verdict = "MISSED" if any("MISSED" in t for t in targets) else "met"
            target = " ; ".join(re.sub(r":\s*(ok|MISSED)$", "", t) for t in targets)
            rows.append(
                Row(
                    "speed",
                    f"{corpus}: {label}",
                    " / ".join(k for k, _, _ in present),
                    "FTS5 " + " / ".join(f for _, f, _ in present),
                    target,
                    verdict,
                )
            )

        row("full build", ("full build",))
        row("incremental build (1 edit)", ("incremental build, 1 edit",))
        row("search p50 / p99, first time", ("search p50, first time", "search p99, first time"))
        row("search CPU p50 / p99, first", ("  CPU time p50#1", "  CPU time p99#1"))

    seen: dict[str, int] = {}
    for line in out.splitlines():
        header = re.match(r"^(\w[\w-]*): (\d+) articles, (\d+) searches", line)
        if header:
            flush()
            corpus, values, seen = f"{header[1]} ({header[2]} art.)", {}, {}
            continue
        m = re.match(
            r"^  (\s*\S.*?)\s{2,}(\S+ (?:ms|s|KiB|MiB))\s+(-|\S+ (?:ms|s|KiB|MiB))"
            r"\s*(.*)$",
            line,
        )
        if m and corpus:
            label = m[1].rstrip()
            seen[label] = seen.get(label, 0) + 1
            key = f"{label}#{seen[label]}" if label.startswith("  CPU") else label
            values[key] = (m[2], m[3], m[4].strip())
    flush()
    return _need(rows, "corpus table")


def parse_http(out: str) -> list[Row]:
    rows = []
    pattern = re.compile(
        r"^(?P<endpoint>/\S*)\s+(?P<mix>\S+)\s+\|\s+(?P<rps>[\d.]+)\s+(?P<p50>[\d.]+)\s+"
        r"(?P<p99>[\d.]+)\s+(?P<err>\d+)\s+\|\s+(?P<crps>[\d.]+)\s+(?P<cp50>[\d.]+)\s+"
        r"(?P<cp99>[\d.]+)\s+(?P<cerr>\d+)\s+\|\s+(?P<ratio>[\d.]+)\s+(?P<rest>.*)$"
    )
    for line in out.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        rest = m["rest"].strip()
        verdict = "met" if rest.endswith("met") else "MISSED" if rest.endswith("MISSED") else ""
        target = rest.removesuffix(verdict).strip()
        target = "" if target == "-" else f"kb/ceiling {target}"
        mix = "" if m["mix"] == "-" else f" ({m['mix']})"
        rows.append(
            Row(
                "http",
                f"{m['endpoint']}{mix}: req/s, p99 ms, errors",
                f"{float(m['rps']):.0f}, {float(m['p99']):.1f}, {m['err']}",
                f"ceiling {float(m['crps']):.0f}, {float(m['cp99']):.1f} (×{m['ratio']})",
                target,
                verdict,
            )
        )
    return _need(rows, "endpoint row")


def _table_row(out: str, label: str, start: int = 0) -> tuple[str, str, str] | None:
    """(value, target, verdict) of a row of bench.upload's or bench.tus's tables: the last
    value before the target is the median (or the only run)."""
    for line in out.splitlines()[start:]:
        if not line.startswith(label):
            continue
        rest = line[len(label) :].split()
        numbers = []
        i = 0
        while i < len(rest) and re.fullmatch(r"-?[\d.,]+", rest[i]):
            numbers.append(rest[i])
            i += 1
        if not numbers:
            continue
        tail = rest[i:]
        verdict = ""
        if tail and tail[-1] in ("OK", "MANQUÉ"):
            verdict = "met" if tail[-1] == "OK" else "MISSED"
            tail = tail[:-1]
        return numbers[-1], " ".join(tail), verdict
    return None


def parse_upload(out: str) -> list[Row]:
    size = re.search(r"Envoi de ([\d.]+) Gio", out)
    what = f"{size[1]} GiB" if size else "upload"
    kb = _table_row(out, "kb upload, s")
    dd = _table_row(out, "dd conv=fsync, s")
    ratio = _table_row(out, "ratio kb/dd")
    growth = _table_row(out, "croissance max(pics) - repos, MB")
    if not (kb and dd and ratio and growth):
        raise FiguresMissing("no kb/dd or memory rows in the report")
    return [
        Row(
            "upload",
            f"{what} attachment: time, s (kb/dd)",
            f"{kb[0]} (×{ratio[0]})",
            f"dd {dd[0]}",
            ratio[1],
            ratio[2],
        ),
        Row("upload", f"{what}: server memory growth, MB", growth[0], "", growth[1], growth[2]),
    ]


def parse_tus(out: str) -> list[Row]:
    size = re.search(r"1\. ([\d.]+) Gio par tus", out)
    what = f"{size[1]} GiB" if size else "tus"
    total = _table_row(out, "total : création, PATCH, ticket, s")
    dd = _table_row(out, "dd conv=fsync, s")
    ratio = _table_row(out, "ratio kb/dd")
    growth = _table_row(out, "croissance max(pics) - repos, MB")
    twice = _table_row(out, "octets envoyés deux fois")
    lost = _table_row(out, "secondes perdues")
    if not (total and dd and ratio and growth):
        raise FiguresMissing("no kb/dd or memory rows in the report")
    rows = [
        Row(
            "tus",
            f"{what} by tus + ticket: time, s (kb/dd)",
            f"{total[0]} (×{ratio[0]})",
            f"dd {dd[0]}",
            ratio[1],
            ratio[2],
        ),
        Row("tus", f"{what}: server memory growth, MB", growth[0], "", growth[1], growth[2]),
    ]
    if twice:
        rows.append(Row("tus", "resume: MiB sent twice", twice[0], "", twice[1], twice[2]))
    if lost:
        rows.append(Row("tus", "resume: seconds lost", lost[0], "", lost[1], lost[2]))
    return rows


def parse_load(out: str) -> list[Row]:
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise FiguresMissing("no BENCH_JSON line")
    summary = json.loads(line[len("BENCH_JSON ") :])
    rows = []
    for name, d in summary["databases"].items():
        failed = [c for c, ok in d["checks"].items() if not ok]
        kinds = d["kinds"]
        rows.append(
            Row(
                "load",
                f"{name}: req/s, p50 / p99 ms (all kinds)",
                f"{d['rps']:.0f}, {d['p50_ms']:.0f} / {d['p99_ms']:.0f}",
                "",
                "",
                "",
            )
        )
        for kind in ("recherche", "article", "ticket", "login"):
            k = kinds.get(kind)
            if k:
                rows.append(
                    Row(
                        "load",
                        f"{name}: {kind}: req/s, p50 / p99 ms",
                        f"{k['rps']:.1f}, {k['p50_ms']:.0f} / {k['p99_ms']:.0f}",
                        "",
                        "",
                        "",
                    )
                )
        rows.append(
            Row(
                "load",
                f"{name}: tickets created / in the database",
                f"{d['tickets_answered']} / {d['tickets_db']} ({d['tickets_per_s']:.1f}/s)",
                "",
                "equal",
                "met" if d["tickets_answered"] == d["tickets_db"] else "MISSED",
            )
        )
        rows.append(
            Row(
                "load",
                f"{name}: errors, failed checks",
                f"{d['errors']}, {len(failed)}",
                "",
                "0, 0",
                "met" if not failed and not d["errors"] else "MISSED",
            )
        )
        for check in failed:
            rows.append(Row("load", f"{name}: check failed: {check}", "", "", "", "MISSED"))
    for failure in summary.get("failures", []):
        rows.append(Row("load", f"did not finish: {failure[:60]}", "", "", "", "FAILED"))
    return _need(rows, "database")


BENCHES = [
    Bench("relevance", ["bench.relevance"], ["bench.relevance"], 1200, parse_relevance),
    Bench(
        "speed",
        ["bench.speed"],
        ["bench.speed", "--corpus", "shipped", "--corpus", "generated", "--generated", "300"],
        3600,
        parse_speed,
    ),
    Bench(
        "http", ["bench.http"], ["bench.http", "--seconds", "3", "--warmup", "1"], 1800, parse_http
    ),
    Bench("upload", ["bench.upload"], ["bench.upload", "--size-gb", "0.25"], 1800, parse_upload),
    Bench("tus", ["bench.tus"], ["bench.tus", "--size-gb", "0.25"], 2400, parse_tus),
    Bench(
        "load", ["bench.load"], ["bench.load", "--seconds", "15", "--users", "16"], 1800, parse_load
    ),
]


# --------------------------------------------------------------------------- running


class Current:
    """The benchmark running now: stopped (SIGTERM, so it stops its own servers) on Ctrl-C,
    SIGTERM or its time limit."""

    process: subprocess.Popen[str] | None = None


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # each bench stops what it started on SIGTERM
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_bench(bench: Bench, quick: bool) -> Ran:
    argv = [sys.executable, "-m", *(bench.quick if quick else bench.full)]
    limit = max(300.0, bench.timeout_s / 3) if quick else bench.timeout_s
    print(f"\n=== {' '.join(argv[2:])} (limit {limit / 60:.0f} min)", flush=True)
    print(f"bench.all: {' '.join(argv[2:])}…", file=sys.stderr, flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None,  # its progress, as it comes
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    Current.process = process
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not line.startswith("BENCH_JSON "):
                sys.stdout.write(line)
                sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    status: int | None
    try:
        status = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        stop(process)
        status = None
    finally:
        Current.process = None
    reader.join(timeout=10)
    ran = Ran(bench, status, time.monotonic() - started, "".join(lines))
    try:
        ran.rows = bench.parse(ran.stdout)
    except (FiguresMissing, ValueError, KeyError) as exc:
        ran.problem = f"figures not read: {exc}"
    if status is None:
        ran.problem = f"stopped after its limit of {limit / 60:.0f} min" + (
            f"; {ran.problem}" if ran.problem else ""
        )
    elif status != 0:
        ran.problem = f"exit status {status}" + (f"; {ran.problem}" if ran.problem else "")
    return ran


def summary(runs: list[Ran], quick: bool, began: float) -> str:
    rows: list[Row] = []
    for ran in runs:
        if ran.problem:
            rows.append(Row(ran.bench.name, ran.problem, "", "", "", "FAILED"))
        rows += ran.rows
    heads = ("bench", "measure", "kb", "baseline (same run)", "target", "verdict")
    table = [heads] + [(r.bench, r.measure, r.kb, r.baseline, r.target, r.verdict) for r in rows]
    widths = [min(60, max(len(row[i]) for row in table)) for i in range(len(heads))]
    lines = [
        "",
        "=" * 80,
        "Summary"
        + (
            " (--quick: small sizes, short runs: a smoke run, not figures to quote)"
            if quick
            else ""
        )
        + f" — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}, {(time.monotonic() - began) / 60:.1f} min",
        "",
    ]
    for i, row in enumerate(table):
        lines.append(
            "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for ran in runs:
        state = "FAILED: " + ran.problem if ran.problem else "ok"
        lines.append(f"  {ran.bench.name:<10} {ran.seconds:7.0f} s  {state}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = [b.name for b in BENCHES]
    parser = argparse.ArgumentParser(
        prog="python -m bench.all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--only", nargs="+", choices=names, help="these benchmarks only")
    parser.add_argument("--skip", nargs="+", choices=names, default=[], help="not these")
    parser.add_argument("--strict", action="store_true", help="a missed target also fails")
    args = parser.parse_args(argv)

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    chosen = [
        b for b in BENCHES if (not args.only or b.name in args.only) and b.name not in args.skip
    ]
    began = time.monotonic()
    runs: list[Ran] = []
    try:
        for bench in chosen:
            runs.append(run_bench(bench, args.quick))
    except KeyboardInterrupt:
        if Current.process is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            stop(Current.process)
        print(summary(runs, args.quick, began))
        print("bench.all: interrupted", file=sys.stderr)
        return 130
    print(summary(runs, args.quick, began))
    failed = any(r.problem for r in runs)
    missed = any(row.verdict in ("MISSED", "FAILED") for r in runs for row in r.rows)
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
