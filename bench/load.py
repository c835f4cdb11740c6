"""Many users at once on `kb serve --workers 2`, SQLite then PostgreSQL: no error, every ticket.
bench/README.md, "Load", says how."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import shutil
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import sqlalchemy as sa

from bench import harness as h
from bench.http import popular_queries
from kb import db, tables
from kb.config import Settings
from kb.helpdesk import accounts as domain
from kb.knowledge.search import SearchIndex

ACTIONS = {"search": 45, "article": 27, "vote": 12, "ticket": 8, "login": 8}
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1/postgres"
NEW_WORD = "zythogrammes"  # in no shipped article: found once the new one is indexed


class User:
    """One browser: its own cookies and connection, a seeded choice of actions."""

    def __init__(self, n: int, base: str, plan: dict[str, Any], seen: dict[str, Any]) -> None:
        self.rng, self.plan, self.seen = random.Random(n), plan, seen
        self.login = plan["accounts"][n]
        self.client = httpx2.AsyncClient(base_url=base, timeout=30)

    async def request(self, kind: str, method: str, path: str, expect: int, **kw: Any):
        """The answer when its status is `expect`; else None, the failure counted and said."""
        start = time.perf_counter()
        try:
            response = await self.client.request(method, path, **kw)
            problem = "" if response.status_code == expect else str(response.status_code)
        except httpx2.HTTPError as exc:
            problem = repr(exc)
        self.seen["times"].setdefault(kind, []).append(time.perf_counter() - start)
        if problem:
            self.seen["failed"][kind] = self.seen["failed"].get(kind, 0) + 1
            self.seen["errors"].append(f"{kind}: {method} {path}: {problem}")
            return None
        return response

    def form(self, **fields: str) -> dict[str, str]:
        return {"csrf": self.client.cookies.get("kb_csrf", ""), **fields}

    async def log_in(self) -> None:
        self.client.cookies.delete("kb_session")
        await self.request("login_form", "GET", "/connexion", 200)
        form = self.form(identifiant=self.login, mot_de_passe=h.PASSWORD)
        await self.request("login", "POST", "/connexion", 303, data=form)

    async def search(self) -> None:
        query = self.rng.choice(self.plan["queries"])
        for i in range(2, len(query)):
            if self.rng.random() < 0.35:  # a debounced field sends one keystroke in three
                await self.request("suggest", "GET", "/api/suggest?q=" + quote(query[:i]), 200)
        await self.request("recherche", "GET", "/recherche?q=" + quote(query), 200)

    async def article(self) -> None:
        slug = self.rng.choice(self.plan["slugs"])
        await self.request("article", "GET", f"/articles/{slug}", 200)

    async def vote(self) -> None:
        form = self.form(utile=self.rng.choice(("oui", "non")))
        slug = self.rng.choice(self.plan["slugs"])
        await self.request("vote", "POST", f"/articles/{slug}/vote", 303, data=form)

    async def ticket(self) -> None:
        await self.request("ticket_form", "GET", "/tickets/nouveau", 200)
        body, jeton = self.rng.randbytes(self.rng.randint(1024, 65536)), uuid.uuid4().hex
        category = self.rng.choice(self.plan["categories"])
        form = self.form(jeton=jeton, categorie=category, sujet="Charge", message="Bonjour.")
        files = {"fichiers": ("export.bin", body, "application/octet-stream")}
        response = await self.request("ticket", "POST", "/tickets", 303, data=form, files=files)
        location = response.headers.get("location", "") if response else ""
        if location.startswith("/tickets/T-"):
            self.seen["tickets"][jeton] = (len(body), hashlib.sha256(body).hexdigest())
            await self.request("ticket_view", "GET", location, 200)

    async def run(self, deadline: float) -> None:
        await asyncio.sleep(self.rng.random())  # users arrive over the first second
        await self.log_in()
        while time.perf_counter() < deadline:
            action = self.rng.choices(list(ACTIONS), list(ACTIONS.values()))[0]
            await (self.log_in() if action == "login" else getattr(self, action)())
        await self.client.aclose()


async def users(base: str, plan: dict[str, Any], seconds: float) -> dict[str, Any]:
    seen: dict[str, Any] = {"times": {}, "failed": {}, "errors": [], "tickets": {}}
    deadline = time.perf_counter() + seconds
    crowd = [User(n, base, plan, seen) for n in range(len(plan["accounts"]))]
    await asyncio.wait_for(asyncio.gather(*(u.run(deadline) for u in crowd)), seconds + 60)
    return seen


@contextlib.contextmanager
def database(kind: str, admin_url: str) -> Iterator[str]:
    """'' for SQLite in the data dir; else a fresh PostgreSQL database, dropped after."""
    if kind == "sqlite":
        yield ""
        return
    name = f"kb_bench_load_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def accounts(engine: sa.Engine, count: int) -> list[str]:
    """`count` establishment accounts with the bench's password: their logins."""

    def one(n: int) -> str:
        login = f"{9_100_000 + n:07d}"
        login += "ABCDEFGHJKLMNPRSTUVWXYZ"[int(login) % 23]  # a valid UAI
        account, _ = domain.save(engine, role="etablissement", login=login,
                                 establishment=f"Lycée n° {n}", first_name="Camille",
                                 last_name=f"Charge{n}", email=f"charge{n}@example.fr")  # fmt: skip
        domain.set_password(engine, account, h.PASSWORD)
        return login

    with ThreadPoolExecutor(4) as pool:  # argon2 releases the GIL
        return list(pool.map(one, range(count)))


def tickets_exact(engine: sa.Engine, data: Path, sent: dict[str, tuple[int, str]]) -> str:
    """'' when the database holds exactly the tickets answered, each with its attachment as
    sent and its file there, and no other file; else what is wrong."""
    with engine.connect() as c:
        tickets = c.execute(sa.select(sa.func.count()).select_from(tables.tickets)).scalar()
        rows = c.execute(sa.select(tables.tickets.c.creation_token, tables.attachments.c.stored_as,
                                   tables.attachments.c.size, tables.attachments.c.sha256)
                         .select_from(tables.tickets.join(tables.messages).join(tables.attachments))
                         ).all()  # fmt: skip
    # The token is the account's id, then the form's jeton.
    found = {r.creation_token.split(":")[-1]: (r.size, r.sha256) for r in rows}
    files = {p.name for p in (data / "attachments").rglob("*") if p.is_file()}
    files -= {p.name for p in (data / "attachments" / "tmp").glob("*.kept")}  # notes of moves
    wrong = [t for t in sent if found.get(t) != sent[t]]
    missing = [r.stored_as for r in rows if not (data / "attachments" / r.stored_as).is_file()]
    counted = tickets == len(sent) and len(found) == len(rows)
    problems = [f"{tickets} tickets in the database, {len(sent)} answered"] * (not counted)
    problems += [f"{len(wrong)} tickets not as sent"] * bool(wrong)
    problems += [f"{len(missing)} files missing"] * bool(missing)
    problems += [f"{len(files) - len(rows)} stray files"] * (len(files) != len(rows))
    return "; ".join(problems)


def one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with h.scratch(f"load-{kind}") as work, database(kind, args.postgres_url) as url:
        content, data = work / "content", work / "data"
        shutil.copytree(h.ROOT / "content", content)
        env = h.kb_env(work, content, **({"KB_DATABASE_URL": url} if url else {}))
        h.kb(None, env, "build")
        settings = Settings(content_dir=content, index_dir=work / "index", data_dir=data,
                            database_url=url)  # fmt: skip
        engine = db.make_engine(settings)
        db.upgrade(engine)
        snapshot = SearchIndex(work / "index").snapshot()
        plan = {"accounts": accounts(engine, args.users),
                "queries": popular_queries(content),
                "slugs": [a["slug"] for a in snapshot.listing if not a["draft"]],
                "categories": [c["slug"] for c in snapshot.categories]}  # fmt: skip
        kb = h.kb_serve(None, env, work, workers=2)
        try:
            rebuild = threading.Timer(args.seconds / 2, rebuilt, (content, env, work))
            rebuild.start()
            cpu, start = kb.cpu(), time.perf_counter()
            seen = asyncio.run(users(kb.base, plan, args.seconds))
            seconds, server_cpu = time.perf_counter() - start, kb.cpu() - cpu
            rebuild.join()
            found = httpx2.get(f"{kb.base}/api/search?q={NEW_WORD}").json()["total"]
        finally:
            kb.stop()
        tickets = tickets_exact(engine, data, seen["tickets"])
        engine.dispose()
        log = kb.log.read_text(errors="replace")
    checks = {
        "no failed request": "; ".join(seen["errors"][:5]),
        "kb build during the run, its new article found": "" if found else "not found",
        "tickets in the database = tickets answered": tickets,
        "no traceback, no worker restarted": "; ".join(
            f"{log.count(s)}× {s!r}" for s in ("Traceback", "died") if s in log
        ),
    }
    every = [t for times in seen["times"].values() for t in times]
    kinds = {k: {"requests": len(t), "errors": seen["failed"].get(k, 0), "rps": len(t) / seconds,
                 "p50_ms": 1000 * statistics.median(t), "p99_ms": 1000 * h.percentile(t, 99)}
             for k, t in [*sorted(seen["times"].items()), ("all", every)]}  # fmt: skip
    return {"users": args.users, "seconds": seconds, "server_cpu_s": server_cpu,
            "tickets": len(seen["tickets"]), "kinds": kinds, "checks": checks}  # fmt: skip


def rebuilt(content: Path, env: dict[str, str], work: Path) -> None:
    """A new article written into the served content, then `kb build` while users go on."""
    (content / "utilisation" / "banc-de-charge.md").write_text(
        f"---\ntitle: Les {NEW_WORD} du banc de charge\nsummary: Ajouté pendant la charge.\n---\n\n"
        f"Les {NEW_WORD} n'apparaissent dans aucun autre article.\n"
    )
    h.kb(None, env, "build")


def main() -> int:
    parser = h.parser("bench.load", __doc__, tree=False)
    parser.add_argument("--seconds", type=float, default=60.0, help="of load (60)")
    parser.add_argument("--users", type=int, default=64, help="at once (64)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postgres-url", default=POSTGRES, help=f"its server ({POSTGRES})")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results, summary = {}, []
    for kind in kinds:
        print(f"{kind}: {args.users} users for {args.seconds:g} s…", file=sys.stderr)
        r = results[kind] = one(kind, args)
        print(f"\n{kind}: {r['users']} users, {r['seconds']:.1f} s, kb serve --workers 2, "
              f"server CPU {r['server_cpu_s']:.1f} s")  # fmt: skip
        rows = [["kind", "requests", "errors", "p50 ms", "p99 ms", "req/s"]]
        rows += [[name, k["requests"], k["errors"], f"{k['p50_ms']:.1f}", f"{k['p99_ms']:.1f}",
                  f"{k['rps']:.1f}"] for name, k in r["kinds"].items()]  # fmt: skip
        print(h.table(rows, "<>>>>>", "  "))
        for check, problem in r["checks"].items():
            print(f"  [{'FAILED' if problem else 'ok'}] {check}{': ' + problem if problem else ''}")
        a = r["kinds"]["all"]
        summary += [
            h.row(f"{kind}: req/s, p50 / p99 ms",
                  f"{a['rps']:.0f}, {a['p50_ms']:.0f} / {a['p99_ms']:.0f}"),
            h.row(f"{kind}: errors, tickets, checks failed",
                  f"{a['errors']}, {r['tickets']}, {sum(map(bool, r['checks'].values()))}",
                  "", "0, exact, 0", not any(r["checks"].values())),
        ]  # fmt: skip
    h.write_result("load", args, results, summary)
    return 0 if all(not any(r["checks"].values()) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
