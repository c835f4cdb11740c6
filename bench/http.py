"""`kb serve --workers 2` under wrk beside a plain Starlette ceiling, in rounds taking turns:
/api/search on a realistic and a distinct mix, /api/suggest, and `/` beside a Jinja2 page
(bench/README.md, "HTTP", says more)."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx2
import yaml

from bench import harness as h
from bench.corpora import read_front_matter, write

COOKIE = {"Cookie": "kb_csrf=" + "b" * 43}  # a returning browser's requests carry one
FLUSH_SECONDS = 5.0  # kb's workers write their usage counts this often
# endpoint, mix, the ceiling's path, target kb/ceiling, target p99 ms (issue 16)
ROWS = {
    "realistic": ("/api/search", "realistic", "/json/realistic", 0.6, 30.0),
    "distinct": ("/api/search", "distinct", "/json/distinct", 0.3, 60.0),
    "suggest": ("/api/suggest", "distinct", "/json/distinct", None, 30.0),
    "page": ("/", "-", "/page", 0.5, None),
}
SPREAD_TARGET, WRK_LUA = 0.15, Path(__file__).with_name("wrk.lua")


def popular_queries(content: Path) -> list[str]:
    """The judged queries, then the served articles' titles as typed (lowercase)."""
    found: dict[str, None] = {}
    for path in sorted((h.ROOT / "tests" / "relevance").glob("*.yml")):
        found.update((str(q["query"]).strip(), None) for q in yaml.safe_load(path.read_text()))
    for path in sorted(content.rglob("*.md")):
        title = " ".join(str(read_front_matter(path)[0].get("title", "")).lower().split())
        found.update({title: None} if title else {})
    return list(found)


def realistic(popular: list[str], count: int, seed: int) -> list[str]:
    """Popular queries by Zipf weight, each after about a third of its prefixes (as a
    debounced search-as-you-type field sends them)."""
    ranked = list(popular)
    random.Random(0).shuffle(ranked)  # which query is the most popular: arbitrary but fixed,
    rng = random.Random(seed)  # the same for the warm-up as for the measured runs
    weights = [1.0 / rank for rank in range(1, len(ranked) + 1)]
    out: list[str] = []
    while len(out) < count:
        query = rng.choices(ranked, weights)[0]
        prefixes = [query[:i] for i in range(1, len(query)) if not query[i - 1].isspace()]
        out += [p for p in prefixes if rng.random() < 0.35] + [query]
    return out[:count]


def distinct(content: Path, count: int, seed: int) -> list[str]:
    """Different queries of two or three words found in at least two articles."""
    spread: Counter[str] = Counter()
    for path in sorted(content.rglob("*.md")):
        meta, body = read_front_matter(path)
        spread.update(set(re.findall(r"[^\W\d_]{3,}", f"{meta.get('title', '')} {body}".lower())))
    words = sorted(w for w, n in spread.items() if n >= 2)
    rng, out = random.Random(seed), {}  # type: ignore[var-annotated]
    while len(out) < count:
        out[" ".join(rng.sample(words, rng.choice((2, 2, 3))))] = None
    return list(out)


def wrk(base: str, paths: Path, seconds: float, args: argparse.Namespace, start: int = 0):
    """One bounded wrk run from line `start` of the file: its summary."""
    headers = [f"{k}: {v}" for k, v in {**COOKIE, **args.headers}.items()]
    done = subprocess.run(
        ["wrk", "--threads=1", f"--connections={args.connections}", "--timeout=5s",
         f"--duration={max(1, round(seconds))}s", "--latency", f"--script={WRK_LUA}",
         *(x for hd in headers for x in ("-H", hd)),
         base, "--", str(paths), str(start), "1"],
        capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    found = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.M)
    if done.returncode or not found:
        raise RuntimeError(f"wrk: {done.returncode} {done.stderr[-1000:]}")
    s = json.loads(found[1])
    rps = s["requests"] / (s["us"] / 1e6)
    return {"rps": rps, "p50_ms": s["p50"] / 1000, "p99_ms": s["p99"] / 1000,
            "errors": s["errors"], "requests": s["requests"]}  # fmt: skip


def measure(server: h.Server, paths: Path, warm: Path, start: int, args, first: bool = False):
    """A warm-up (ten times longer before a mix's first round: a server that has been up
    for a while), then a measured run: wrk's figures and the server's CPU per request."""
    if args.warmup:
        wrk(server.base, warm, args.warmup * (10 if first else 1), args)
    cpu = server.cpu()
    run = wrk(server.base, paths, args.seconds, args, start)
    run["cpu_ms"] = 1000 * (server.cpu() - cpu) / max(1, run["requests"])
    return run


def settle(kb: h.Server) -> None:
    """Until kb has written its usage counts and is idle: that work is not the next run's."""
    time.sleep(FLUSH_SECONDS + 0.5)
    for _ in range(30):
        cpu = kb.cpu()
        time.sleep(0.5)
        if kb.cpu() - cpu < 0.02:
            return


def lines(path: Path, items: list[str]) -> Path:
    path.write_text("".join(f"{item}\n" for item in items))
    return path


def api(prefix: str, queries: list[str]) -> list[str]:
    return [f"{prefix}?{urlencode({'q': q, 'per_page': 10}, quote_via=quote)}" for q in queries]


def typical(base: str, paths: list[str]) -> bytes:
    """The answer of median size among these."""
    answers = sorted((r.content for r in map(httpx2.get, (base + p for p in paths))), key=len)
    return answers[len(answers) // 2]


def main() -> int:
    parser = h.parser("bench.http", __doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="a run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="kb and the ceiling in turn (3)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive (64)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each run (2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers, both (2)")
    parser.add_argument("--articles", type=int, help="N generated articles, not alwaysdata")
    parser.add_argument("--gzip", action="store_true", help="Accept-Encoding: gzip (both)")
    parser.add_argument("--new-replica", action="store_true", help="kb serve builds the index")
    parser.add_argument("--only", nargs="+", choices=list(ROWS), default=list(ROWS))
    args = parser.parse_args()
    args.headers = {"Accept-Encoding": "gzip"} if args.gzip else {}
    if not shutil.which("wrk"):
        raise SystemExit("bench.http: wrk is needed (apt-get install wrk)")
    with h.scratch("http") as work:
        content = work / "content"
        write("generated" if args.articles else "alwaysdata", content, args.articles)
        env = h.kb_env(work, content)
        if not args.new_replica:
            print(h.kb(args.tree, env, "build").strip(), file=sys.stderr)
        count = int(args.seconds * 15_000 * args.rounds) + 20_000  # more than kb answers
        popular = popular_queries(content)
        pool = distinct(content, count + 5_300, seed=2)
        mixes = {"realistic": (realistic(popular, count, seed=1),
                               realistic(popular, 5_000, seed=101)),
                 "distinct": (pool[5_300:], pool[300:5_300])}  # fmt: skip
        start = time.perf_counter()
        servers = [kb := h.kb_serve(args.tree, env, work, args.workers)]
        listening = time.perf_counter() - start  # with --new-replica, its first build included
        while httpx2.get(kb.base + "/readyz").status_code == 503:  # building its index
            time.sleep(0.2)
        ready = time.perf_counter() - start
        print(f"kb serve: listening after {listening:.1f} s, ready after {ready:.1f} s")
        try:
            samples = {"realistic": mixes["realistic"][0][:300], "distinct": pool[:300]}
            bodies = {m: typical(kb.base, api("/api/search", q)) for m, q in samples.items()}
            as_json = {m: json.loads(body) for m, body in bodies.items()}  # what the ceiling sends
            (work / "bodies.json").write_text(json.dumps(as_json, ensure_ascii=False))
            page = len(httpx2.get(kb.base + "/", headers=COOKIE).content)
            argv = [sys.executable, "-m", "bench.ceiling", "--workers", str(args.workers)]
            settings = dict(CEILING_BODIES=str(work / "bodies.json"), CEILING_PAGE_BYTES=str(page),
                            CEILING_GZIP=str(int(args.gzip)))  # fmt: skip
            servers.append(ceiling := h.Server(argv, {**env, **settings}, work / "c.log"))
            for mix, body in bodies.items():  # the same bytes as kb's answers, from Starlette
                if len(httpx2.get(f"{ceiling.base}/json/{mix}").content) != len(body):
                    raise RuntimeError(f"the ceiling's /json/{mix} is not as long as kb's answer")
            rows = {name: run_row(name, kb, ceiling, mixes, work, args) for name in args.only}
        finally:
            for server in servers:
                server.stop()
    return report(rows, args, {"listening_s": listening, "ready_s": ready})


def run_row(name: str, kb: h.Server, ceiling: h.Server, mixes: dict, work: Path, args) -> dict:
    endpoint, mix, ceiling_path, _, _ = ROWS[name]
    if mix == "-":
        kb_paths = kb_warm = lines(work / "kb-page.txt", ["/"])
        ceiling_paths = lines(work / "ceiling-page.txt", [ceiling_path])
    else:
        queries, warm = mixes[mix]
        kb_paths = lines(work / f"kb-{name}.txt", api(endpoint, queries))
        kb_warm = lines(work / f"kb-{name}-warm.txt", api(endpoint, warm))
        ceiling_paths = lines(work / f"ceiling-{name}.txt", api(ceiling_path, queries))
    rounds = []
    for i in range(args.rounds):
        print(f"{name}: round {i + 1}/{args.rounds}…", file=sys.stderr)
        # Each round goes on where the previous one stopped in the file.
        at = {s: sum(r[s]["requests"] for r in rounds) for s in ("kb", "ceiling")}
        kb_run = measure(kb, kb_paths, kb_warm, at["kb"], args, first=not rounds)
        settle(kb)
        ceiling_run = measure(ceiling, ceiling_paths, ceiling_paths, at["ceiling"], args)
        rounds.append({"kb": kb_run, "ceiling": ceiling_run,
                       "ratio": kb_run["rps"] / ceiling_run["rps"]})  # fmt: skip
    ratios = [r["ratio"] for r in rounds]
    median = sorted(rounds, key=lambda r: r["ratio"])[(len(rounds) - 1) // 2]
    return {**median, **h.median_spread(ratios), "rounds": ratios, "every_round": rounds}


def report(rows: dict[str, dict], args: argparse.Namespace, start: dict[str, float]) -> int:
    print(f"\nkb serve vs ceiling: {args.workers} workers each, {args.connections} connections, "
          f"{args.seconds:g} s a run, the round of median kb/ceiling of {args.rounds}"
          + (", gzip" if args.gzip else ""))  # fmt: skip
    table = [["row", "kb req/s", "p50", "p99", "err", "CPU ms", "|", "ceil req/s", "p99", "|",
              "kb/ceil", "rounds", "spread", "target (spread <= 15 %)"]]  # fmt: skip
    summary = []
    for name, r in rows.items():
        endpoint, mix, _, ratio_target, p99_target = ROWS[name]
        k, c = r["kb"], r["ceiling"]
        parts = (ratio_target and f">= {ratio_target}", p99_target and f"p99 < {p99_target:g} ms")
        target = ", ".join(part for part in parts if part)
        ok = (k["errors"] == 0 and r["spread"] <= SPREAD_TARGET
              and (ratio_target is None or r["ratio"] >= ratio_target)
              and (p99_target is None or k["p99_ms"] < p99_target))  # fmt: skip
        table.append([name, f"{k['rps']:.0f}", f"{k['p50_ms']:.1f}", f"{k['p99_ms']:.1f}",
                      k["errors"], f"{k['cpu_ms']:.2f}", "|", f"{c['rps']:.0f}",
                      f"{c['p99_ms']:.1f}", "|", f"{r['ratio']:.2f}",
                      " ".join(f"{x:.2f}" for x in r["rounds"]), f"{100 * r['spread']:.0f} %",
                      f"{target}: {'met' if ok else 'MISSED'}"])  # fmt: skip
        summary.append(h.row(
            f"{endpoint} ({mix}): req/s, p99 ms, errors; spread",
            f"{k['rps']:.0f}, {k['p99_ms']:.1f}, {k['errors']}; {100 * r['spread']:.0f} %",
            f"ceiling {c['rps']:.0f}, {c['p99_ms']:.1f} (×{r['ratio']:.2f})",
            target + ", spread <= 15 %", ok,
        ))  # fmt: skip
    print(h.table(table, "<>>>>><>><><><"))
    print(
        "CPU ms: all the server's processes, per request; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wrk shares them)"
    )
    replica = "a new replica (it builds)" if args.new_replica else "kb serve (index built)"
    times = f"{start['listening_s']:.1f}, {start['ready_s']:.1f}"
    summary.append(h.row(f"{replica}: s until it listens, is ready", times))
    h.write_result("http", args, {**rows, **start}, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
