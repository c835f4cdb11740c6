"""The users of ``bench.load``: a second process, asyncio + httpx2, one client (cookies) a user.

    python -m bench.load_users PLAN.json RESULT.json

``PLAN.json`` (written by ``bench.load``) gives the server's base URL (127.0.0.1 only), the
accounts and their password, the queries, articles and categories, the number of users and
the duration. Each user logs in, then loops until the time is up, each turn one of:

- a search as typed: a few prefixes of a query on ``/api/suggest`` (as a debounced field
  sends them), then the whole query on ``/recherche``;
- an article view (``/articles/<slug>``);
- a vote on an article (POST ``/articles/<slug>/vote``, ``utile=oui|non``);
- a login again: the session cookie dropped, GET then POST ``/connexion``;
- a ticket: GET ``/tickets/nouveau``, then a multipart POST ``/tickets`` with a small
  attachment and a unique ``jeton``, then the ticket's page the answer redirects to.

Every request is timed; an answer other than the expected status (or a transport error,
or a timeout) is an error of its kind. The run is bounded: no request starts after
``seconds``, each one has a timeout, and the process gives up ``grace`` seconds after the
end. ``RESULT.json`` gets, per kind, each request's start (seconds since the run began)
and latency, the errors (kind, request, status, the start of the answer), and every ticket
the server said it created (jeton, reference, attachment size and SHA-256).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2

from bench.http_mixes import typed_prefixes

KINDS = (
    "suggest",
    "recherche",
    "article",
    "vote",
    "login_form",
    "login",
    "ticket_form",
    "ticket",
    "ticket_view",
)
# What a user does each turn, and how often (searches dominate a help center's traffic).
ACTIONS = {"search": 45, "article": 27, "vote": 12, "ticket": 8, "login": 8}
PREFIX_CHANCE = 0.35  # a debounced field sends about one keystroke in three
MAX_ERROR_SAMPLES = 40


@dataclass
class Recorder:
    began: float  # time.perf_counter() when the run began
    wall: float  # time.time() at the same moment: the parent's clock
    timings: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {k: [] for k in KINDS}
    )
    errors: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    error_times: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    samples: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    failed_tickets: list[str] = field(default_factory=list)  # jetons whose POST failed

    def ok(self, kind: str, start: float, seconds: float) -> None:
        self.timings[kind].append((round(start - self.began, 4), round(seconds * 1000, 3)))

    def error(self, kind: str, start: float, seconds: float, what: dict[str, Any]) -> None:
        self.timings[kind].append((round(start - self.began, 4), round(seconds * 1000, 3)))
        self.errors[kind] += 1
        self.error_times[kind].append(round(start - self.began, 4))
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append({"kind": kind, "at": round(start - self.began, 3), **what})


class User:
    def __init__(self, n: int, plan: dict[str, Any], recorder: Recorder, deadline: float) -> None:
        self.n = n
        self.plan = plan
        self.rec = recorder
        self.deadline = deadline
        self.rng = random.Random(plan["seed"] * 1000 + n)
        self.login, self.password = plan["accounts"][n % len(plan["accounts"])]
        self.client = httpx2.AsyncClient(
            base_url=plan["base"],
            timeout=httpx2.Timeout(plan["timeout"]),
            limits=httpx2.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=False,
        )
        self.ticket_count = 0

    async def request(
        self, kind: str, method: str, path: str, expect: int, **kwargs: Any
    ) -> httpx2.Response | None:
        start = time.perf_counter()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx2.HTTPError as exc:
            self.rec.error(
                kind,
                start,
                time.perf_counter() - start,
                {
                    "request": f"{method} {path}",
                    "transport": type(exc).__name__,
                    "detail": str(exc)[:200],
                },
            )
            return None
        seconds = time.perf_counter() - start
        if response.status_code != expect:
            self.rec.error(
                kind,
                start,
                seconds,
                {
                    "request": f"{method} {path}",
                    "status": response.status_code,
                    "location": response.headers.get("location"),
                    "body": response.text[:300],
                },
            )
            return None
        self.rec.ok(kind, start, seconds)
        return response

    def csrf(self) -> str:
        return self.client.cookies.get("kb_csrf", "")

    async def log_in(self) -> bool:
        self.client.cookies.delete("kb_session")
        if await self.request("login_form", "GET", "/connexion", 200) is None:
            return False
        form = {"csrf": self.csrf(), "identifiant": self.login, "mot_de_passe": self.password}
        response = await self.request("login", "POST", "/connexion", 303, data=form)
        return response is not None and "kb_session" in self.client.cookies

    async def search(self) -> None:
        query = self.rng.choice(self.plan["queries"])
        for prefix in typed_prefixes(query):
            if len(prefix.strip()) >= 2 and self.rng.random() < PREFIX_CHANCE:
                if time.perf_counter() >= self.deadline:
                    return
                await self.request("suggest", "GET", "/api/suggest?q=" + quote(prefix), 200)
        if time.perf_counter() < self.deadline:
            await self.request("recherche", "GET", "/recherche?q=" + quote(query), 200)

    async def article(self) -> None:
        slug = self.rng.choice(self.plan["slugs"])
        await self.request("article", "GET", f"/articles/{slug}", 200)

    async def vote(self) -> None:
        slug = self.rng.choice(self.plan["slugs"])
        form = {"csrf": self.csrf(), "utile": self.rng.choice(("oui", "non"))}
        await self.request("vote", "POST", f"/articles/{slug}/vote", 303, data=form)

    async def ticket(self) -> None:
        if await self.request("ticket_form", "GET", "/tickets/nouveau", 200) is None:
            return
        self.ticket_count += 1
        jeton = uuid.uuid4().hex
        low, high = self.plan["attachment_bytes"]
        body = self.rng.randbytes(self.rng.randint(low, high))
        fields = {
            "csrf": self.csrf(),
            "jeton": jeton,
            "categorie": self.rng.choice(self.plan["categories"]),
            "sujet": f"Charge {self.n}-{self.ticket_count} : l'export ne s'ouvre pas",
            "message": "Bonjour,\nl'export joint ne s'ouvre pas depuis ce matin.\nMerci.",
        }
        files = {
            "fichiers": (
                f"export-{self.n}-{self.ticket_count}.bin",
                body,
                "application/octet-stream",
            )
        }
        response = await self.request("ticket", "POST", "/tickets", 303, data=fields, files=files)
        location = response.headers.get("location", "") if response is not None else ""
        if response is None:
            self.rec.failed_tickets.append(jeton)
            return
        if not location.startswith("/tickets/T-") or not location.endswith("?cree=1"):
            self.rec.errors["ticket"] += 1
            self.rec.samples.append(
                {"kind": "ticket", "request": "POST /tickets", "status": 303, "location": location}
            )
            self.rec.failed_tickets.append(jeton)
            return
        reference = location.split("?", 1)[0].rsplit("/", 1)[1]
        self.rec.tickets.append(
            {
                "jeton": jeton,
                "reference": reference,
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        )
        if time.perf_counter() < self.deadline:
            await self.request("ticket_view", "GET", location, 200)

    async def run(self) -> None:
        actions = list(ACTIONS)
        weights = [ACTIONS[a] for a in actions]
        try:
            # Users arrive over the first second, not all in the same millisecond.
            await asyncio.sleep(self.rng.random())
            logged_in = await self.log_in()
            while time.perf_counter() < self.deadline:
                action = self.rng.choices(actions, weights)[0]
                if action == "ticket" and not logged_in:
                    action = "login"
                if action == "login":
                    logged_in = await self.log_in()
                else:
                    await getattr(self, action)()
                if self.plan["think"]:
                    await asyncio.sleep(self.rng.uniform(0, 2 * self.plan["think"]))
        finally:
            await self.client.aclose()


async def main_async(plan: dict[str, Any]) -> Recorder:
    recorder = Recorder(time.perf_counter(), time.time())
    began = recorder.began
    deadline = began + plan["seconds"]
    users = [User(n, plan, recorder, deadline) for n in range(plan["users"])]
    tasks = [asyncio.create_task(u.run()) for u in users]
    done, pending = await asyncio.wait(tasks, timeout=plan["seconds"] + plan["grace"])
    for task in pending:  # bounded: whatever still runs after the grace period is stopped
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    for task in done:
        if task.exception() is not None:
            recorder.samples.append({"kind": "client", "exception": repr(task.exception())})
    recorder.samples.extend(
        {"kind": "client", "cancelled": "a user still busy after the grace period"} for _ in pending
    )
    return recorder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_users", description=__doc__)
    parser.add_argument("plan")
    parser.add_argument("result")
    args = parser.parse_args(argv)
    with open(args.plan, encoding="utf-8") as handle:
        plan = json.load(handle)
    host = urlsplit(plan["base"]).hostname
    if host != "127.0.0.1":
        print(f"bench.load_users: 127.0.0.1 only, not {host}", file=sys.stderr)
        return 2
    cpu_start = time.process_time()
    try:
        import uvloop
    except ImportError:
        recorder = asyncio.run(main_async(plan))
    else:
        recorder = uvloop.run(main_async(plan))
    result = {
        "wall_start": recorder.wall,
        "seconds": time.perf_counter() - recorder.began,
        "client_cpu_s": time.process_time() - cpu_start,
        "timings": recorder.timings,
        "errors": recorder.errors,
        "error_times": recorder.error_times,
        "samples": recorder.samples,
        "tickets": recorder.tickets,
        "failed_tickets": recorder.failed_tickets,
    }
    with open(args.result, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
