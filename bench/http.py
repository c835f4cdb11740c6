"""HTTP speed of ``kb serve`` against a plain Starlette ceiling under the same server.

    python -m bench.http [--seconds 10] [--connections 64] [--rounds 3] [--articles N] [--profile]

1. imports the alwaysdata help center (``bench.corpora``) into a temporary folder, or with
   ``--articles N`` writes N generated ones (``bench.synthetic``), and builds its index;
2. starts ``kb serve --workers 2`` on 127.0.0.1 (a free port, a temporary data dir) and the
   ceiling app (``bench.ceiling``: a JSON endpoint answering a real ``/api/search`` body of
   kb, a Jinja2 page as long as kb's ``/``) with the same uvicorn settings and worker count;
3. loads each, from a second process (wrk, else ``bench.http_client``), with bounded runs:
   ``--connections`` keep-alive connections for ``--seconds``, after a short warm-up, in
   ``--rounds`` rounds, kb and the ceiling taking turns; no run is ever done again (users
   cannot), and after each kb run the script waits for kb's usage flush, so that it does not
   fall on the next run;
4. prints one table: endpoint × query mix → requests/s, p50 and p99 latency, errors, for kb
   and for the ceiling (the round of median kb/ceiling), the ratio of each round and their
   spread ((max - min) / median), and the targets of issue 16 (``/api/search`` at least 0.6
   of the JSON ceiling on the realistic mix with p99 under 30 ms, 0.3 with p99 under 60 ms
   when every query is new, ``/api/suggest`` p99 under 30 ms; spread at most 15 %);
5. stops every process it started, on success, failure or Ctrl-C.

The query mixes (``bench.http_mixes``): *realistic*, popular queries repeated with their
prefixes as typed; *distinct*, every request a different query of corpus words.

With ``--profile``, one more run of each kb endpoint is sampled with py-spy (``pip install
py-spy``) and the report says where the workers' time goes. The requests carry a CSRF
cookie, as a returning browser's do; ``--gzip`` adds ``Accept-Encoding: gzip`` (and kb's
GZipMiddleware to the ceiling).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote, urlencode

from bench.corpora import ALWAYSDATA_SRC, import_alwaysdata
from bench.http_load import LoadResult, load_tool, run_load
from bench.http_mixes import corpus_titles, corpus_words, distinct, judged_queries, realistic

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
COOKIE = "kb_csrf=" + "b" * 43  # a returning browser: kb checks the length only here
API_TARGET_RATIO = 0.6
API_TARGET_P99_MS = 30.0
DISTINCT_TARGET_RATIO = 0.3
DISTINCT_TARGET_P99_MS = 60.0
SUGGEST_TARGET_P99_MS = 30.0
PAGE_TARGET_RATIO = 0.5
SPREAD_TARGET = 0.15  # (max - min) / median of the rounds' kb/ceiling
try:  # how often kb's workers write the usage counts they keep in memory
    from kb.web.app import FLUSH_SECONDS as USAGE_FLUSH_SECONDS
except ImportError:  # pragma: no cover - kb moved it: a safe guess
    USAGE_FLUSH_SECONDS = 5.0
SAMPLES = 300  # answers fetched once to find the typical body size of each mix


# --------------------------------------------------------------------------- processes


class Processes:
    """Every child process started, to stop them all whatever happens."""

    def __init__(self) -> None:
        self._started: list[tuple[subprocess.Popen[bytes], bool]] = []

    def start(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """A server in its own session: its group (uvicorn's workers too) is stopped as one."""
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )
        self._started.append((process, True))
        return process

    def track(self, process: subprocess.Popen[bytes]) -> None:
        """A short-lived helper (the load generator, py-spy): stopped alone if still running."""
        self._started.append((process, False))

    def stop_all(self) -> None:
        for process, group in reversed(self._started):
            _stop(process, group)
        self._started.clear()


def _stop(process: subprocess.Popen[bytes], group: bool) -> None:
    def signal_it(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(process.pid, sig)
            elif process.poll() is None:
                process.send_signal(sig)

    if process.poll() is None:
        signal_it(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_it(signal.SIGKILL)
            process.wait()
    if group:  # workers left behind by a parent that died first
        signal_it(signal.SIGKILL)


def session_processes(session: int) -> list[tuple[int, int, int]]:
    """(pid, parent pid, CPU ticks) of the live processes of a session."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # After "pid (comm) ": state ppid pgrp session … utime (14th field) stime (15th).
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session:
            found.append((int(entry.name), int(fields[1]), int(fields[11]) + int(fields[12])))
    return found


def session_cpu_seconds(session: int) -> dict[int, float]:
    """User + system CPU time of each process of a server (its session), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    return {pid: ticks / tick for pid, _, ticks in session_processes(session)}


def worker_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """uvicorn's worker processes (spawned by multiprocessing; not its resource tracker)."""
    workers = []
    for pid, ppid, _ in session_processes(server.pid):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if ppid == server.pid and b"spawn_main" in command:
                workers.append(pid)
    return sorted(workers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            if fetch(base + "/healthz")[0] == 200:
                return
        time.sleep(0.1)
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    raise RuntimeError(f"{base} did not answer /healthz (log {log}):\n{tail}")


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Measure:
    load: LoadResult
    worker_cpu_s: tuple[float, ...]  # CPU time of each worker during the run, most busy first
    server_cpu_s: float  # CPU time of all the server's processes during the run
    new_queries: float | None = None  # share of the requests not asked before (warm-up too)

    @property
    def end(self) -> int:
        """The line of the file a next run goes on from."""
        return self.load.start + self.load.requests

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.load.requests if self.load.requests else 0.0

    @property
    def worker_split(self) -> str:
        """How the work fell on the workers, e.g. "50/50" or "93/7"."""
        total = sum(self.worker_cpu_s)
        if not total:
            return "-"
        return "/".join(f"{100 * s / total:.0f}" for s in self.worker_cpu_s)


@dataclass(frozen=True)
class Row:
    endpoint: str
    mix: str
    kb: Measure
    ceiling: Measure
    target_ratio: float | None
    target_p99_ms: float | None
    ratios: tuple[float, ...] = ()  # kb/ceiling of each round, in order

    @property
    def ratio(self) -> float:
        return self.kb.load.rps / self.ceiling.load.rps if self.ceiling.load.rps else 0.0

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds' kb/ceiling: what a user may get from one
        moment to the next."""
        if len(self.ratios) < 2 or not statistics.median(self.ratios):
            return 0.0
        return (max(self.ratios) - min(self.ratios)) / statistics.median(self.ratios)

    @property
    def target(self) -> str:
        parts = [f">= {self.target_ratio:.2f}"] if self.target_ratio is not None else []
        if self.target_p99_ms is not None:
            parts.append(f"p99 < {self.target_p99_ms:.0f} ms")
        return ", ".join(parts) or "-"

    @property
    def verdict(self) -> str:
        if self.target_ratio is None and self.target_p99_ms is None:
            return ""
        ok = self.kb.load.errors == 0 and self.spread <= SPREAD_TARGET
        if self.target_ratio is not None:
            ok = ok and self.ratio >= self.target_ratio
        if self.target_p99_ms is not None:
            ok = ok and self.kb.load.p99_ms < self.target_p99_ms
        return "met" if ok else "MISSED"


def api_path(query: str, per_page: int, prefix: str = "/api/search") -> str:
    return prefix + "?" + urlencode({"q": query, "per_page": per_page}, quote_via=quote)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def typical_body(
    base: str, paths: list[str], headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, float]]:
    """The answer of median size among ``paths``, and what the sample says of the mix."""
    answers = []
    for path in paths:
        status, body = fetch(base + path, headers)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        answers.append((len(body), json.loads(body)))
    answers.sort(key=lambda a: a[0])
    size, body = answers[len(answers) // 2]
    stats = {
        "median_bytes": size,
        "with_results": sum(1 for _, a in answers if a["total"]) / len(answers),
        "median_total": statistics.median(a["total"] for _, a in answers),
    }
    return body, stats


def measure(
    tool: str,
    base: str,
    server: subprocess.Popen[bytes],
    paths_file: Path,
    warmup_file: Path,
    args: argparse.Namespace,
    headers: dict[str, str],
    processes: Processes,
    start: int = 0,
    queries: bool = False,
) -> Measure:
    """A warm-up, then a measured run from line ``start`` of ``paths_file``.

    With ``queries``, also the share of the run's requests that neither the warm-up nor an
    earlier request of the run asked: what an unbounded result cache could not answer.
    """
    load = functools.partial(
        run_load,
        tool,
        base,
        connections=args.connections,
        headers=headers,
        threads=args.threads,
        track=processes.track,
    )
    warm = load(warmup_file, seconds=args.warmup) if args.warmup > 0 else None
    seen = set(warm.sent(read_lines(warmup_file))) if warm and queries else set()
    workers = worker_pids(server)
    before = session_cpu_seconds(server.pid)
    result = load(paths_file, seconds=args.seconds, start=start)
    after = session_cpu_seconds(server.pid)
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    per_worker = tuple(sorted((spent.get(pid, 0.0) for pid in workers), reverse=True))
    new = None
    if queries and result.requests:
        sent = result.sent(read_lines(paths_file))
        new = len(set(sent) - seen) / len(sent) if sent else None
    return Measure(result, per_worker, sum(spent.values()), new)


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def settle(server: subprocess.Popen[bytes], limit: float = 15.0) -> None:
    """Wait until kb has written its usage counts (a timer, every FLUSH_SECONDS) and is idle,
    so that this work does not fall on the next run (the ceiling's, or another endpoint's)."""
    time.sleep(USAGE_FLUSH_SECONDS + 0.5)
    deadline = time.monotonic() + limit
    previous = sum(session_cpu_seconds(server.pid).values())
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = sum(session_cpu_seconds(server.pid).values())
        if current - previous < 0.02:
            return
        previous = current


def median_round(kb_runs: list[Measure], ceiling_runs: list[Measure]) -> tuple[Measure, Measure]:
    """The round of median kb/ceiling (the lower middle one for an even count)."""
    rounds = sorted(zip(kb_runs, ceiling_runs, strict=True), key=lambda r: _ratio(*r))
    return rounds[(len(rounds) - 1) // 2]


def _ratio(kb: Measure, ceiling: Measure) -> float:
    return kb.load.rps / ceiling.load.rps if ceiling.load.rps else 0.0


def load_average() -> float:
    """The 1-minute load average: other work competing for the CPUs makes the figures noisy."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def run(args: argparse.Namespace, work: Path, processes: Processes) -> int:
    tool = load_tool() if args.client == "auto" else args.client
    load_before = load_average()
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    content, index, data = work / "content", work / "index", work / "data"
    if args.articles:
        from bench.synthetic import generate

        generate(args.articles, content)
        say(f"corpus: {args.articles} generated articles in {content}")
    else:
        articles = import_alwaysdata(ALWAYSDATA_SRC, content)
        say(f"corpus: alwaysdata, {articles} articles imported into {content}")
    from kb.knowledge.build import build

    report = build(content, index)
    say(f"index: {report.summary()}")

    env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_DATA_DIR": str(data)}
    env.pop("KB_DATABASE_URL", None)
    kb_port, ceiling_port = free_port(), free_port()
    kb_base, ceiling_base = f"http://{HOST}:{kb_port}", f"http://{HOST}:{ceiling_port}"
    workers = str(args.workers)
    kb_log = work / "kb-serve.log"
    kb = processes.start(
        [sys.executable, "-m", "kb.cli", "serve", "--content", str(content), "--index",
         str(index), "--host", HOST, "--port", str(kb_port), "--workers", workers],
        kb_log,
        env,
    )  # fmt: skip
    wait_healthy(kb_base, kb, kb_log, limit=600)
    say(f"kb serve: {kb_base} (workers {worker_pids(kb)})")

    plain = {"Cookie": COOKIE}  # for the sizes: bodies as kb makes them, before compression
    headers = dict(plain)
    if args.gzip:
        headers["Accept-Encoding"] = "gzip"

    # The mixes.
    popular = judged_queries() + corpus_titles(content)
    # Enough requests in each file that a run does not come back to its start.
    count = max(20_000, int(args.seconds * args.rate * args.rounds))
    realistic_queries = realistic(popular, count, seed=args.seed)
    warm_realistic = realistic(popular, 5_000, seed=args.seed + 100)
    words = corpus_words(content)
    distinct_count = count
    pool = distinct(words, distinct_count + 2 * SAMPLES + 5_000, seed=args.seed + 1)
    sample_distinct, warm_distinct, distinct_queries = (
        pool[:SAMPLES],
        pool[SAMPLES : SAMPLES + 5_000],
        pool[SAMPLES + 5_000 :],
    )
    known = set(popular)
    prefixes = sum(1 for q in realistic_queries if q not in known)
    say(
        f"mixes: realistic, {len(set(popular))} popular queries (Zipf), "
        f"{100 * prefixes / len(realistic_queries):.0f} % of requests are prefixes, "
        f"{len(set(realistic_queries))} distinct in {len(realistic_queries)}; "
        f"distinct, {len(distinct_queries)} queries of {len(words)} corpus words"
    )

    # Sizes: a typical answer of each mix, and kb's home page.
    per_page = args.per_page
    real_body, real_stats = typical_body(
        kb_base, [api_path(q, per_page) for q in realistic_queries[:SAMPLES]], plain
    )
    distinct_body, distinct_stats = typical_body(
        kb_base, [api_path(q, per_page) for q in sample_distinct], plain
    )
    status, home = fetch(kb_base + "/", {"Cookie": COOKIE})
    if status != 200:
        raise RuntimeError(f"GET /: {status}")
    say(
        f"typical /api/search answer: realistic {real_stats['median_bytes']} B "
        f"({100 * real_stats['with_results']:.0f} % with results), distinct "
        f"{distinct_stats['median_bytes']} B ({100 * distinct_stats['with_results']:.0f} % with "
        f"results); / is {len(home)} B"
    )

    # The ceiling, under the same server settings.
    bodies = work / "ceiling-bodies.json"
    bodies.write_text(
        json.dumps({"realistic": real_body, "distinct": distinct_body}, ensure_ascii=False),
        encoding="utf-8",
    )
    ceiling_log = work / "ceiling.log"
    ceiling_argv = [sys.executable, "-m", "bench.ceiling", "--host", HOST, "--port",
                    str(ceiling_port), "--workers", workers, "--bodies", str(bodies),
                    "--page-bytes", str(len(home))]  # fmt: skip
    if args.gzip:
        ceiling_argv.append("--gzip")
    ceiling = processes.start(ceiling_argv, ceiling_log, env)
    wait_healthy(ceiling_base, ceiling, ceiling_log, limit=60)
    for name, expected in (("realistic", real_stats["median_bytes"]),
                           ("distinct", distinct_stats["median_bytes"])):  # fmt: skip
        got = len(fetch(f"{ceiling_base}/json/{name}")[1])
        if got != expected:
            raise RuntimeError(f"ceiling /json/{name}: {got} bytes, kb's answer {expected}")
    if len(fetch(ceiling_base + "/page")[1]) != len(home):
        raise RuntimeError("ceiling /page is not as long as kb's /")
    say(f"ceiling: {ceiling_base} (workers {worker_pids(ceiling)}); load: {tool}")

    files = work / "paths"
    files.mkdir()

    def paths(name: str, queries: list[str], prefix: str) -> Path:
        return write_lines(files / f"{name}.txt", [api_path(q, per_page, prefix) for q in queries])

    plan = [
        ("/api/search", "realistic",
         paths("kb-realistic", realistic_queries, "/api/search"),
         paths("kb-realistic-warm", warm_realistic, "/api/search"),
         paths("ceiling-realistic", realistic_queries, "/json/realistic"),
         API_TARGET_RATIO, API_TARGET_P99_MS),
        ("/api/search", "distinct",
         paths("kb-distinct", distinct_queries, "/api/search"),
         paths("kb-distinct-warm", warm_distinct, "/api/search"),
         paths("ceiling-distinct", distinct_queries, "/json/distinct"),
         DISTINCT_TARGET_RATIO, DISTINCT_TARGET_P99_MS),
        ("/api/suggest", "distinct",
         paths("kb-suggest", distinct_queries, "/api/suggest"),
         paths("kb-suggest-warm", warm_distinct, "/api/suggest"),
         paths("ceiling-suggest", distinct_queries, "/json/distinct"),
         None, SUGGEST_TARGET_P99_MS),
        ("/", "-",
         write_lines(files / "kb-home.txt", ["/"]),
         write_lines(files / "kb-home-warm.txt", ["/"]),
         write_lines(files / "ceiling-page.txt", ["/page"]),
         PAGE_TARGET_RATIO, None),
    ]  # fmt: skip
    rows = []
    kb_next: dict[tuple[str, str], int] = {}  # where the next run of kb goes on in each file
    for endpoint, mix, kb_file, warm_file, ceiling_file, ratio, p99 in plan:
        kb_runs: list[Measure] = []
        ceiling_runs: list[Measure] = []
        queries = mix != "-"
        for round_ in range(1, args.rounds + 1):
            of = f" (round {round_}/{args.rounds})" if args.rounds > 1 else ""
            # Each round goes on where the previous one stopped in the file.
            kb_start = kb_runs[-1].end if kb_runs else 0
            ceiling_start = ceiling_runs[-1].end if ceiling_runs else 0
            say(f"load: {endpoint} {mix}: kb{of}…")
            kb_runs.append(
                measure(tool, kb_base, kb, kb_file, warm_file, args, headers, processes,
                        start=kb_start, queries=queries)
            )  # fmt: skip
            settle(kb)
            say(f"load: {endpoint} {mix}: ceiling{of}…")
            ceiling_runs.append(
                measure(tool, ceiling_base, ceiling, ceiling_file, ceiling_file, args, headers,
                        processes, start=ceiling_start)
            )  # fmt: skip
        ratios = tuple(_ratio(k, c) for k, c in zip(kb_runs, ceiling_runs, strict=True))
        rows.append(Row(endpoint, mix, *median_round(kb_runs, ceiling_runs), ratio, p99, ratios))
        kb_next[endpoint, mix] = kb_runs[-1].end

    print(report_text(rows, args, tool, load_before))

    if args.profile:
        from bench.http_profile import breakdown, record

        for endpoint, mix, kb_file, *_ in plan[:1] + plan[3:]:
            settle(kb)
            out = work / "profile" / ("api" if endpoint.startswith("/api") else "home")
            spies = record(worker_pids(kb), args.seconds, out, track=processes.track)
            run_load(
                tool,
                kb_base,
                kb_file,
                connections=args.connections,
                seconds=args.seconds,
                headers=headers,
                threads=args.threads,
                start=kb_next[endpoint, mix],
                track=processes.track,
            )
            for spy in spies:
                spy.wait(timeout=args.seconds + 30)
            print(f"\nProfile of kb's workers, {endpoint} ({mix}):")
            print(breakdown(sorted(out.glob("worker-*.txt"))))

    if args.strict and any(r.verdict == "MISSED" for r in rows):
        return 1
    return 0


def report_text(rows: list[Row], args: argparse.Namespace, tool: str, load_before: float) -> str:
    head = (
        f"{'endpoint':<12} {'mix':<10} | {'kb req/s':>8} {'p50':>6} {'p99':>6} {'err':>4} | "
        f"{'ceil req/s':>10} {'p50':>6} {'p99':>6} {'err':>4} | {'kb/ceil':>7}  "
        f"{'target':<22} verdict"
    )
    lines = [
        "",
        f"kb serve vs ceiling: {args.workers} uvicorn workers each, {args.connections} "
        f"connections, {args.seconds:g} s per run"
        + (f", median of {args.rounds} rounds" if args.rounds > 1 else "")
        + f" ({tool}, 127.0.0.1); latency in ms",
        "",
        head,
        "-" * len(head),
    ]
    for r in rows:
        k, c = r.kb.load, r.ceiling.load
        lines.append(
            f"{r.endpoint:<12} {r.mix:<10} | {k.rps:>8.0f} {k.p50_ms:>6.1f} {k.p99_ms:>6.1f} "
            f"{k.errors:>4} | {c.rps:>10.0f} {c.p50_ms:>6.1f} {c.p99_ms:>6.1f} {c.errors:>4} | "
            f"{r.ratio:>7.2f}  {r.target:<22} {r.verdict}"
        )
        if len(r.ratios) > 1:
            rounds = " ".join(f"{x:.2f}" for x in r.ratios)
            lines.append(
                f"{'':<12} {'':<10}   rounds kb/ceil {rounds}: spread {100 * r.spread:.0f} % "
                f"(target <= {100 * SPREAD_TARGET:.0f} %)"
            )
    head = (
        f"{'details':<23} | {'server CPU ms/req':>17} | {'workers %':>11} | "
        f"{'bytes/answer':>12} | {'client CPU s':>12} | new queries"
    )
    lines += ["", head, f"{'':<23} | {'kb':>8} {'ceil':>8} | {'kb':>5} {'ceil':>5} | "
              f"{'kb':>5} {'ceil':>6} | {'kb':>5} {'ceil':>6} | (kb)", "-" * len(head)]  # fmt: skip
    notes = []
    for r in rows:
        k, c = r.kb, r.ceiling
        new = f"{100 * k.new_queries:.0f} %" if k.new_queries is not None else "-"
        lines.append(
            f"{r.endpoint + ' ' + r.mix:<23} | {k.cpu_ms_per_request:8.2f} "
            f"{c.cpu_ms_per_request:8.2f} | {k.worker_split:>5} {c.worker_split:>5} | "
            f"{k.load.bytes_per_request:5.0f} {c.load.bytes_per_request:6.0f} | "
            f"{k.load.client_cpu_s:5.1f} {c.load.client_cpu_s:6.1f} | {new}"
        )
        for who, m in (("kb", k), ("ceiling", c)):
            if m.load.client_cpu_s > 0.8 * m.load.seconds:
                notes.append(
                    f"  {r.endpoint} {r.mix} ({who}): the load generator used "
                    f"{100 * m.load.client_cpu_s / m.load.seconds:.0f} % of a CPU: it may be "
                    "what limits this figure"
                )
        if k.load.wrapped and r.mix != "-":
            notes.append(
                f"  {r.endpoint} {r.mix}: kb went past the end of its {k.load.paths} queries, "
                "some came again (raise --rate)"
            )
    lines += [
        "  server CPU: all the server's processes, per request; workers: how that CPU fell on "
        "the two workers; bytes: read per answer (with wrk, headers included); client: the load "
        "generator's CPU; new queries: requests whose query neither the warm-up nor an earlier "
        "request had asked (what a result cache could not answer)",
        *notes,
    ]
    cpus = os.cpu_count() or 0
    lines.append(
        f"  machine: {cpus} CPUs shared by the load generator and the server under test; "
        f"load average {load_before:.1f} before the run"
        + (" (other work was competing for the CPUs: noisy figures)" if load_before > 0.5 else "")
    )
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (10)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent (64)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each run (2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (2)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per row, kb/ceiling's median kept (3)"
    )
    parser.add_argument("--articles", type=int, help="N generated articles, not alwaysdata")
    parser.add_argument("--per-page", type=int, default=10, help="/api/search per_page (10)")
    parser.add_argument("--seed", type=int, default=1, help="for the query mixes (1)")
    parser.add_argument(
        "--rate",
        type=int,
        default=15_000,
        help="queries prepared per second of run, for each mix (15000: more than kb answers, "
        "so that no query comes again)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="load generator: wrk when installed, else an asyncio + httpx2 client (auto)",
    )
    parser.add_argument("--gzip", action="store_true", help="send Accept-Encoding: gzip")
    parser.add_argument("--profile", action="store_true", help="then sample kb with py-spy")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (logs)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=False)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="kb-bench-http-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)  # even when started in the background
    processes = Processes()
    with _workdir(args.keep) as work:
        try:
            return run(args, work, processes)
        except KeyboardInterrupt:
            print("bench.http: interrupted", file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"bench.http: {exc}", file=sys.stderr)
            return 2
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):  # the clean-up is not interrupted
                signal.signal(sig, signal.SIG_IGN)
            processes.stop_all()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
