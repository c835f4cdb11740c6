"""Issue 7, "Load": many users at once on ``kb serve --workers 2``, SQLite then PostgreSQL.

    python -m bench.load [--seconds 60] [--users 64] [--database sqlite|postgresql|both]

For each database:

1. a temporary folder gets a copy of the repository's ``content/``, an index built from it
   (``kb build``) and a data dir; for PostgreSQL, a fresh database on the local server
   (``--postgres-url``, trust auth), created here and dropped at the end;
2. ``--users`` establishment accounts (valid UAI codes) are created and given a password
   through ``kb.helpdesk.accounts`` against that database;
3. ``kb serve --workers 2`` starts on a free 127.0.0.1 port, in its own process group;
4. a second process (``bench.load_users``) runs the users for ``--seconds``: searches as
   typed (prefixes on ``/api/suggest``, then ``/recherche``), article views, votes, logins,
   and tickets with a small attachment, each with its own ``jeton``;
5. half-way through, a new article is written into the content copy and ``kb build`` runs
   (same ``--content`` and ``--index`` as the server); meanwhile ``/api/search`` is polled
   for a word only that article has, until it is found, then a few more times;
6. afterwards: the new article must still be found and its page served; the tickets are
   counted in the database and must be exactly the creations the server answered (the same
   jetons and references, none lost, none twice), each with one attachment whose file
   exists with the size and SHA-256 that were sent, and no other file in the attachments;
7. one table per database: kind of request → requests, errors, p50, p99, requests/s, and
   the same for the requests in flight while ``kb build`` ran; then the checks, which also
   cover the server log (no traceback, no worker that uvicorn found dead and restarted), and
   the CPU the server and the client used. With any error or failed check, the requests the
   client saw fail, the server log's tracebacks, the access log's answers of status 400 or
   more (method, route, status) and the restarts are quoted, and the log is kept.

The exit status is 1 when a check fails. Every process started is stopped, the PostgreSQL
database dropped and the folder removed, whatever happens (Ctrl-C and SIGTERM too). The
last line of the output is ``BENCH_JSON {...}``, the figures for ``bench.all``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from bench.http import (
    HOST,
    Processes,
    fetch,
    free_port,
    load_average,
    session_cpu_seconds,
    wait_healthy,
    worker_pids,
)
from bench.http_mixes import corpus_titles, judged_queries
from bench.load_users import KINDS
from bench.upload import kb_command, run_queue_wait, schedstat

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "Banc-de-charge-2026!"
UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
NEW_WORD = "zythogrammes"  # in no shipped article: found only once the new one is indexed
NEW_CATEGORY = "utilisation"
ATTACHMENT_BYTES = (1024, 64 * 1024)
GRACE_SECONDS = 30  # after the run, for the requests still in flight
POLL_SECONDS = 0.2
FINAL_POLLS = 20  # after the run, every one must find the new article


def uai(n: int) -> str:
    digits = f"{9_100_000 + n:07d}"
    return digits + UAI_LETTERS[int(digits) % 23]


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank: the smallest value with at least ``pct`` % of the values at or below."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


# --------------------------------------------------------------------------- results


@dataclass
class KindStats:
    kind: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    rps: float


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Outcome:
    database: str
    users: int
    seconds: float
    kinds: list[KindStats] = field(default_factory=list)
    during_build: list[KindStats] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def kind_stats(
    timings: dict[str, list[list[float]]],
    errors: dict[str, int],
    seconds: float,
    window: tuple[float, float] | None = None,
    error_times: dict[str, list[float]] | None = None,
) -> list[KindStats]:
    """Per kind (and for all), from (start, latency ms) pairs; ``window`` keeps the requests
    that were in flight at some moment of it (start before its end, end after its start)."""
    rows = []
    every: list[float] = []
    all_errors = 0
    for kind in KINDS:
        pairs = timings.get(kind, [])
        if window is not None:
            lo, hi = window
            pairs = [p for p in pairs if p[0] <= hi and p[0] + p[1] / 1000 >= lo]
            n_errors = sum(1 for t in (error_times or {}).get(kind, []) if lo <= t <= hi)
        else:
            n_errors = errors.get(kind, 0)
        latencies = [p[1] for p in pairs]
        every += latencies
        all_errors += n_errors
        span = (window[1] - window[0]) if window else seconds
        rows.append(
            KindStats(
                kind,
                len(latencies),
                n_errors,
                percentile(latencies, 50),
                percentile(latencies, 99),
                len(latencies) / span if span else 0.0,
            )
        )
    span = (window[1] - window[0]) if window else seconds
    rows.append(
        KindStats(
            "all",
            len(every),
            all_errors,
            percentile(every, 50),
            percentile(every, 99),
            len(every) / span if span else 0.0,
        )
    )
    return rows


# --------------------------------------------------------------------------- databases


@contextlib.contextmanager
def database(kind: str, admin_url: str) -> Any:
    """The KB_DATABASE_URL to use ('' for SQLite in the data dir); a fresh PostgreSQL database
    created for the run and dropped after it."""
    if kind == "sqlite":
        yield ""
        return
    name = f"kb_bench_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def provision(settings: Any, count: int) -> list[tuple[str, str]]:
    """``count`` establishment accounts with a password: (login, password)."""
    from kb import db
    from kb.helpdesk import accounts

    engine = db.make_engine(settings)
    try:
        db.upgrade(engine)

        def one(n: int) -> tuple[str, str]:
            account, _ = accounts.save(
                engine,
                role="etablissement",
                login=uai(n),
                establishment=f"Lycée de charge n° {n}",
                first_name="Camille",
                last_name=f"Charge{n}",
                email=f"charge{n}@example.fr",
            )
            accounts.set_password(engine, account, PASSWORD)
            return account.login, PASSWORD

        with ThreadPoolExecutor(4) as pool:  # argon2 releases the GIL
            return list(pool.map(one, range(count)))
    finally:
        engine.dispose()


def check_tickets(
    settings: Any, data: Path, sent: list[dict[str, Any]], failed: list[str]
) -> tuple[list[Check], dict[str, Any]]:
    """The database against what the server answered: every ticket, attachment and file."""
    from kb import db, tables

    engine = db.make_engine(settings)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    tables.tickets.c.id,
                    tables.tickets.c.reference,
                    tables.tickets.c.creation_token,
                    sa.func.count(sa.distinct(tables.messages.c.id)).label("messages"),
                )
                .select_from(tables.tickets.outerjoin(tables.messages))
                .group_by(
                    tables.tickets.c.id, tables.tickets.c.reference, tables.tickets.c.creation_token
                )
            ).all()
            files = connection.execute(
                sa.select(
                    tables.tickets.c.creation_token,
                    tables.attachments.c.stored_as,
                    tables.attachments.c.size,
                    tables.attachments.c.sha256,
                ).select_from(tables.tickets.join(tables.messages).join(tables.attachments))
            ).all()
    finally:
        engine.dispose()
    by_token = {t["jeton"]: t for t in sent}
    in_db = Counter(r.creation_token for r in rows)
    checks = []
    duplicated = [t for t, n in in_db.items() if n > 1]
    lost = sorted(set(by_token) - set(in_db))
    unexpected = sorted(set(in_db) - set(by_token))
    created_on_error = sorted(set(in_db) & set(failed))
    checks.append(
        Check(
            "tickets in the database = creations answered",
            len(rows) == len(sent) and not lost and not unexpected and not duplicated,
            f"{len(rows)} in the database, {len(sent)} answered 303 (lost {len(lost)}, not "
            f"answered {len(unexpected)}, of which after a failed request {len(created_on_error)}, "
            f"twice {len(duplicated)})",
        )
    )
    wrong_reference = [
        r.reference
        for r in rows
        if r.creation_token in by_token and by_token[r.creation_token]["reference"] != r.reference
    ]
    one_message = [r.reference for r in rows if r.messages != 1]
    checks.append(
        Check(
            "each ticket: its reference, one message",
            not wrong_reference and not one_message,
            f"wrong reference {len(wrong_reference)}, not one message {len(one_message)}",
        )
    )
    per_token = Counter(f.creation_token for f in files)
    bad: list[str] = []
    stored = set()
    for f in files:
        stored.add(f.stored_as)
        expected = by_token.get(f.creation_token)
        path = data / "attachments" / f.stored_as
        on_disk = path.stat().st_size if path.is_file() else None
        if expected is None:
            continue
        if on_disk != f.size or f.size != expected["size"] or f.sha256 != expected["sha256"]:
            bad.append(
                f"{expected['reference']}: {on_disk} on disk, {f.size} recorded, "
                f"{expected['size']} sent"
            )
    without = [t for t in by_token if per_token.get(t, 0) != 1]
    checks.append(
        Check(
            "each ticket: one attachment, its file there, size and SHA-256 as sent",
            not bad and not without,
            f"{len(files)} attachments; wrong {len(bad)}, tickets without exactly one "
            f"{len(without)}" + (f"; first: {bad[0]}" if bad else ""),
        )
    )
    root = data / "attachments"
    on_disk_files = (
        {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if root.exists()
        else set()
    )
    temp = {p for p in on_disk_files if p.startswith("tmp/")}
    notes = {p for p in temp if p.endswith(".kept")}  # kb's notes of moves, kept an hour
    stray = on_disk_files - temp - stored
    checks.append(
        Check(
            "no stray file in the attachments",
            not stray and not temp - notes,
            f"{len(on_disk_files) - len(temp)} files for {len(stored)} attachments; stray "
            f"{len(stray)}, unfinished in tmp/ {len(temp - notes)} (and {len(notes)} notes)",
        )
    )
    return checks, {"tickets_db": len(rows), "tickets_answered": len(sent)}


# --------------------------------------------------------------------------- the new article


def new_article(content: Path) -> tuple[str, Path]:
    slug = f"banc-de-charge-{uuid.uuid4().hex[:8]}"
    path = content / NEW_CATEGORY / f"{slug}.md"
    path.write_text(
        "---\n"
        f"title: Les {NEW_WORD} du banc de charge\n"
        f"summary: Un article ajouté pendant le banc de charge, pour vérifier qu'il devient "
        f"cherchable.\n"
        "keywords:\n  - banc de charge\n"
        "---\n\n"
        f"Les {NEW_WORD} n'apparaissent dans aucun autre article. Cet article a été ajouté "
        "pendant que des utilisateurs cherchaient, lisaient et créaient des tickets.\n",
        encoding="utf-8",
    )
    return slug, path


class Poller(threading.Thread):
    """/api/search for the new article's word, a new connection each time (either worker)."""

    def __init__(self, base: str, slug: str) -> None:
        super().__init__(daemon=True)
        self.base, self.slug = base, slug
        self.stop = threading.Event()
        self.polls: list[tuple[float, int, bool, float]] = []  # (time, status, found, ms)
        self.first_found: float | None = None
        self.lost_after_found = 0  # polls that did not find it after it was found once

    def poll(self) -> tuple[int, bool]:
        started = time.perf_counter()
        at = time.time()
        try:
            status, body = fetch(f"{self.base}/api/search?q={quote(NEW_WORD)}")
            found = status == 200 and any(
                r["slug"] == self.slug for r in json.loads(body)["results"]
            )
        except (OSError, ValueError, KeyError):
            status, found = 0, False
        self.polls.append((at, status, found, (time.perf_counter() - started) * 1000))
        return status, found

    def run(self) -> None:
        while not self.stop.is_set():
            _, found = self.poll()
            if found and self.first_found is None:
                self.first_found = self.polls[-1][0]
            elif not found and self.first_found is not None:
                self.lost_after_found += 1
            self.stop.wait(POLL_SECONDS)


class WorkerWatch(threading.Thread):
    """The server's workers every half second: which ones come and go, and what the last
    reading of a worker that went said (state, threads, CPU, memory)."""

    def __init__(self, server: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.last: dict[int, str] = {}
        self.gone: list[str] = []
        self.began = time.time()

    def read(self, pid: int) -> str | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()
        tick = os.sysconf("SC_CLK_TCK")
        rss = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), "?")
        cpu = (int(fields[11]) + int(fields[12])) / tick
        memory = f"{int(rss) // 1024} MiB" if rss.isdigit() else rss
        return f"state {fields[0]}, {fields[17]} threads, CPU {cpu:.1f} s, RSS {memory}"

    def run(self) -> None:
        while not self.stop.wait(0.5):
            current = set(worker_pids(self.server))
            for pid in set(self.last) - current:
                self.gone.append(
                    f"worker {pid} gone at {time.time() - self.began:.1f} s of the "
                    f"run; half a second before: {self.last.pop(pid)}"
                )
            for pid in current:
                reading = self.read(pid)
                if reading:
                    self.last[pid] = reading


# --------------------------------------------------------------------------- the server log


TRACEBACK_RE = re.compile(r"^Traceback \(most recent call last\):$")
ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?"]*)[^"]* HTTP/[\d.]+" (?P<status>\d{3})')


def log_evidence(log: Path) -> tuple[list[str], dict[str, int]]:
    """Tracebacks (distinct, with their count and the log line before each) and the access
    log's answers of status 400 or more, by method, route and status."""
    text = log.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    blocks: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if TRACEBACK_RE.match(lines[i]):
            start = i
            i += 1
            while i < len(lines) and (
                lines[i].startswith((" ", "\t"))
                or not lines[i].strip()
                or lines[i].startswith(("During handling", "The above"))
                or TRACEBACK_RE.match(lines[i])
            ):
                i += 1
            block = "\n".join(lines[max(0, start - 1) : i + 1])
            key = lines[i] if i < len(lines) else block[-200:]
            blocks[key] += 1
            first_seen.setdefault(key, block)
        i += 1
    statuses: Counter[tuple[str, str, str]] = Counter()
    for line in lines:
        match = ACCESS_RE.search(line)
        if match and int(match["status"]) >= 400:
            path = re.sub(r"/T-\d{4}-\d+", "/T-…", match["path"])
            path = re.sub(r"^/articles/[^/]+", "/articles/<slug>", path)
            statuses[(match["method"], path, match["status"])] += 1
    restarts = [ln for ln in lines if re.search(r"Child process \[\d+\] died", ln)]
    errors_logged = [
        ln
        for ln in lines
        if ln.startswith(("ERROR", "CRITICAL")) or " ERROR " in ln or "Exception in ASGI" in ln
    ]
    evidence = []
    for key, count in blocks.most_common():
        evidence.append(f"traceback ×{count} in {log.name}:\n{first_seen[key][-4000:]}")
    for (method, path, status), count in statuses.most_common():
        evidence.append(f"access log: {method} {path} → {status} ×{count}")
    if errors_logged and not blocks:
        evidence.append("error lines:\n" + "\n".join(errors_logged[:20]))
    for line in restarts:
        at = lines.index(line)
        evidence.append(
            f"worker restarted by uvicorn ({log.name}, line {at + 1}):\n"
            + "\n".join(lines[max(0, at - 6) : at + 3])
        )
    return evidence, {
        "restarts": len(restarts),
        "tracebacks": sum(blocks.values()),
        "error_statuses": sum(statuses.values()),
        "error_lines": len(errors_logged),
    }


# --------------------------------------------------------------------------- one run


def run_one(kind: str, args: argparse.Namespace, work: Path, processes: Processes) -> Outcome:
    from kb.config import Settings
    from kb.knowledge.search import SearchIndex

    say = lambda text: print(f"[{kind}] {text}", file=sys.stderr, flush=True)  # noqa: E731
    outcome = Outcome(kind, args.users, args.seconds)
    work.mkdir(parents=True)
    content, index, data = work / "content", work / "index", work / "data"
    shutil.copytree(ROOT / "content", content)
    with database(kind, args.postgres_url) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
        env.update(
            KB_DATA_DIR=str(data),
            KB_CONTENT_DIR=str(content),
            KB_INDEX_DIR=str(index),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
        )
        if url:
            env["KB_DATABASE_URL"] = url
        settings = Settings(content_dir=content, index_dir=index, data_dir=data, database_url=url)
        where = ["--content", str(content), "--index", str(index)]
        built = subprocess.run(
            kb_command("build", *where), cwd=ROOT, env=env, capture_output=True, text=True
        )
        if built.returncode != 0:
            raise RuntimeError(f"kb build: {built.returncode} {built.stderr[-2000:]}")
        say(built.stdout.strip())
        started = time.perf_counter()
        accounts = provision(settings, args.users)
        say(
            f"{len(accounts)} accounts with a password in {time.perf_counter() - started:.1f} s"
            + (f" (database {url.rsplit('/', 1)[1]})" if url else " (SQLite)")
        )

        try:
            port = free_port()
            base = f"http://{HOST}:{port}"
            log = work / "kb-serve.log"
            server = processes.start(
                kb_command("serve", *where, "--host", HOST, "--port", str(port), "--workers", "2"),
                log,
                env,
            )
            wait_healthy(base, server, log, limit=120)
            say(f"kb serve --workers 2: {base}, workers {worker_pids(server)}")

            snapshot = SearchIndex(index).snapshot()
            slugs = [a["slug"] for a in snapshot.listing if not a["draft"]]
            categories = [c["slug"] for c in snapshot.categories]
            queries = judged_queries([ROOT / "tests" / "relevance" / "shipped.yml"])
            queries += corpus_titles(content)
            plan = {
                "base": base,
                "accounts": accounts,
                "users": args.users,
                "seconds": args.seconds,
                "grace": GRACE_SECONDS,
                "timeout": args.timeout,
                "think": args.think,
                "seed": args.seed,
                "queries": queries,
                "slugs": slugs,
                "categories": categories,
                "attachment_bytes": ATTACHMENT_BYTES,
            }
            (work / "plan.json").write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
            result_file = work / "result.json"
            load_before = load_average()
            cpu_before = session_cpu_seconds(server.pid)
            sched_before = {pid: schedstat(pid) for pid in worker_pids(server)}
            client = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.load_users",
                    str(work / "plan.json"),
                    str(result_file),
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            processes.track(client)
            run_start = time.time()
            watch = WorkerWatch(server)
            watch.start()
            say(
                f"{args.users} users for {args.seconds:g} s (pid {client.pid}); rebuild at "
                f"{args.seconds / 2:g} s"
            )

            # Half-way: a new article, and kb build while the users keep going.
            time.sleep(max(0.0, run_start + args.seconds / 2 - time.time()))
            slug, _ = new_article(content)
            poller = Poller(base, slug)
            poller.start()
            build_start = time.time()
            rebuilt = subprocess.run(
                kb_command("build", *where), cwd=ROOT, env=env, capture_output=True, text=True
            )
            build_end = time.time()
            say(
                f"kb build during the run: exit {rebuilt.returncode} in "
                f"{build_end - build_start:.2f} s: "
                + (rebuilt.stdout.strip() or rebuilt.stderr[-500:])
            )
            time.sleep(max(0.0, run_start + args.seconds - time.time()))
            poller.stop.set()
            poller.join()

            try:
                _, err = client.communicate(timeout=args.seconds + GRACE_SECONDS + 60)
            except subprocess.TimeoutExpired:
                client.kill()
                client.communicate()
                raise RuntimeError("the users' process did not stop in time") from None
            if client.returncode != 0 or not result_file.exists():
                raise RuntimeError(
                    f"bench.load_users failed ({client.returncode}): "
                    f"{err.decode('utf-8', 'replace')[-3000:]}"
                )
            watch.stop.set()
            watch.join()
            cpu_after = session_cpu_seconds(server.pid)
            server_cpu = sum(t - cpu_before.get(pid, 0.0) for pid, t in cpu_after.items())
            waited = 0.0
            for pid in worker_pids(server):
                with contextlib.suppress(OSError):
                    waited += run_queue_wait(sched_before.get(pid, {}), schedstat(pid))
            load_after = load_average()
            result = json.loads(result_file.read_text(encoding="utf-8"))
            say(
                f"users done: {sum(len(v) for v in result['timings'].values())} requests, "
                f"client CPU {result['client_cpu_s']:.1f} s"
            )

            # After the run: the new article is found by every poll, and its page is there.
            after = Poller(base, slug)
            final = [after.poll() for _ in range(FINAL_POLLS)]
            page_status, _ = fetch(f"{base}/articles/{slug}")
        finally:  # the server goes (its requests in flight finished) before its database
            processes.stop_all()
        checks, figures = check_tickets(settings, data, result["tickets"], result["failed_tickets"])
    # The server is stopped and the PostgreSQL database dropped.
    log_text_evidence, log_figures = log_evidence(log)
    outcome.figures.update(figures, **log_figures)

    seconds = result["seconds"]
    t0 = result["wall_start"]
    outcome.seconds = seconds
    error_times: dict[str, list[float]] = result["error_times"]
    outcome.kinds = kind_stats(result["timings"], result["errors"], seconds)
    window = (build_start - t0, build_end - t0)
    outcome.during_build = kind_stats(
        result["timings"], result["errors"], seconds, window, error_times
    )
    total_errors = sum(result["errors"].values())
    client_problems = [s for s in result["samples"] if s["kind"] == "client"]
    poll_errors = [p for p in poller.polls + after.polls if p[1] != 200]
    outcome.checks.append(
        Check(
            "no failed request (users)",
            total_errors == 0 and not client_problems,
            f"{total_errors} errors in {sum(k.requests for k in outcome.kinds[:-1])} requests"
            + (f"; {len(client_problems)} client problems" if client_problems else ""),
        )
    )
    outcome.checks.append(
        Check(
            "kb build during the run",
            rebuilt.returncode == 0,
            f"exit {rebuilt.returncode}, {build_end - build_start:.2f} s, "
            f"{outcome.during_build[-1].requests} requests in flight meanwhile, "
            f"{outcome.during_build[-1].errors} errors",
        )
    )
    found_after = (poller.first_found - build_start) if poller.first_found else None
    found_polls = sum(1 for p in poller.polls if p[2])
    outcome.checks.append(
        Check(
            "new article searchable during the run",
            poller.first_found is not None
            and found_polls >= 5
            and poller.lost_after_found == 0
            and not poll_errors,
            (
                f"first found {found_after:.2f} s after kb build started (it took "
                f"{build_end - build_start:.2f} s), then by every poll until the end"
                if found_after is not None
                else "never found during the run"
            )
            + f"; {len(poller.polls)} polls, {found_polls} found it, {len(poll_errors)} failed, "
            f"{poller.lost_after_found} missed it after it was found",
        )
    )
    outcome.checks.append(
        Check(
            "new article searchable after the run",
            all(found for _, found in final) and page_status == 200,
            f"{sum(1 for _, f in final if f)}/{len(final)} searches found it; its page: "
            f"{page_status}",
        )
    )
    outcome.checks += checks
    outcome.checks.append(
        Check(
            "no worker died or was restarted",
            log_figures["restarts"] == 0 and not watch.gone,
            f"{log_figures['restarts']} 'Child process died' in the server log"
            + (f"; {'; '.join(watch.gone)}" if watch.gone else ""),
        )
    )
    outcome.checks.append(
        Check(
            "no traceback in the server log",
            log_figures["tracebacks"] == 0,
            f"{log_figures['tracebacks']} tracebacks, {log_figures['error_statuses']} answers "
            "≥ 400 in the access log",
        )
    )
    tickets_rps = len(result["tickets"]) / seconds if seconds else 0.0
    outcome.figures.update(
        requests=sum(k.requests for k in outcome.kinds[:-1]),
        errors=total_errors,
        rps=outcome.kinds[-1].rps,
        p50_ms=outcome.kinds[-1].p50_ms,
        p99_ms=outcome.kinds[-1].p99_ms,
        tickets_per_s=tickets_rps,
        build_s=build_end - build_start,
        found_after_build_s=found_after,
        client_cpu_s=result["client_cpu_s"],
        load_before=load_before,
        kinds={
            k.kind: {
                "requests": k.requests,
                "errors": k.errors,
                "p50_ms": k.p50_ms,
                "p99_ms": k.p99_ms,
                "rps": k.rps,
            }
            for k in outcome.kinds
        },
    )
    cpus = os.cpu_count() or 1
    share = 100 * server_cpu / seconds / cpus
    per_request = 1000 * server_cpu / max(1, outcome.kinds[-1].requests)
    outcome.notes.append(
        f"server: {server_cpu:.1f} s of CPU in {seconds:.1f} s ({share:.0f} % of the {cpus} "
        f"CPUs), {per_request:.1f} ms a request; its workers' threads waited {waited:.1f} s "
        "for a CPU"
    )
    client_cpu = result["client_cpu_s"]
    busy = max(load_before, load_after) > cpus / 2
    outcome.notes.append(
        f"client: {client_cpu:.1f} s of CPU ({100 * client_cpu / seconds:.0f} % of a CPU); "
        f"machine load average {load_before:.1f} before the run, {load_after:.1f} after, on "
        f"{cpus} CPUs" + (" (other work competing for the CPUs: noisy figures)" if busy else "")
    )
    outcome.figures.update(server_cpu_s=server_cpu, server_wait_s=waited, load_after=load_after)
    if total_errors or client_problems or not outcome.ok:
        for sample in result["samples"][:15]:
            outcome.evidence.append("client saw: " + json.dumps(sample, ensure_ascii=False))
        for poll in poll_errors[:5]:
            outcome.evidence.append(f"poll /api/search: status {poll[1]} at {poll[0] - t0:.2f} s")
        outcome.evidence += log_text_evidence
        if args.keep is None:
            keep = Path(tempfile.gettempdir()) / f"kb-bench-load-{kind}-{int(time.time())}.log"
            shutil.copy(log, keep)
            outcome.evidence.append(f"server log kept: {keep}")
    return outcome


def format_outcome(o: Outcome) -> str:
    head = f"{'kind':<12} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
    lines = [
        "",
        f"{o.database}: {o.users} users, {o.seconds:.1f} s, kb serve --workers 2 (127.0.0.1)",
        head + "   | while kb build ran: " + f"{'requests':>8} {'errors':>6} {'p99 ms':>8}",
        "-" * (len(head) + 47),
    ]
    for row, during in zip(o.kinds, o.during_build, strict=True):
        if row.kind == "all":
            lines.append("-" * (len(head) + 47))
        lines.append(
            f"{row.kind:<12} {row.requests:>9} {row.errors:>7} {row.p50_ms:>8.1f} "
            f"{row.p99_ms:>8.1f} {row.rps:>8.1f}   | {'':<20}{during.requests:>8} "
            f"{during.errors:>6} {during.p99_ms:>8.1f}"
        )
    lines.append("")
    for check in o.checks:
        lines.append(f"  [{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
    lines += [f"  note: {n}" for n in o.notes]
    if o.evidence:
        lines.append("\nEvidence:")
        lines += o.evidence
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the load (60)")
    parser.add_argument("--users", type=int, default=64, help="concurrent users (64)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help=f"an administrator's URL ({POSTGRES_ADMIN_URL})",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean pause of a user between two actions, s (0: none)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, s (30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (logs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if not 1 <= args.users <= 512 or not 5 <= args.seconds <= 1800:
        print("bench.load: --users 1..512 and --seconds 5..1800", file=sys.stderr)
        return 2

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    outcomes: list[Outcome] = []
    failures: list[str] = []
    processes = Processes()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        work_root = args.keep.resolve()
    else:
        work_root = Path(tempfile.mkdtemp(prefix="kb-bench-load-"))
    try:
        for kind in kinds:
            try:
                outcomes.append(run_one(kind, args, work_root / kind, processes))
            except (RuntimeError, sa.exc.SQLAlchemyError, OSError) as exc:
                failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                print(f"bench.load: {kind}: {exc}", file=sys.stderr)
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_IGN)
                processes.stop_all()
                signal.signal(signal.SIGTERM, terminated)
                signal.signal(signal.SIGINT, signal.default_int_handler)
    except KeyboardInterrupt:
        print("bench.load: interrupted", file=sys.stderr)
        return 130
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        processes.stop_all()
        if args.keep is None:
            shutil.rmtree(work_root, ignore_errors=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
    for outcome in outcomes:
        print(format_outcome(outcome))
    for failure in failures:
        print(f"\n{failure}: the run did not finish (FAILED)")
    ok = not failures and all(o.ok for o in outcomes)
    summary = {
        "ok": ok,
        "failures": failures,
        "databases": {
            o.database: {"ok": o.ok, **o.figures, "checks": {c.name: c.ok for c in o.checks}}
            for o in outcomes
        },
    }
    print("\nBENCH_JSON " + json.dumps(summary, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
