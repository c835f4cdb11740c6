"""kb's build and in-process search beside SQLite FTS5, on the same articles and searches.

Per corpus: the full build, the build after one edit, the index size and opening time, search
p50/p99 "first time" (on a freshly opened index) and "again", and the suggestions as typed.
kb returns a results page (hits, highlighted titles, snippets, facets); FTS5 ten rows with
highlight() and snippet(). bench/README.md, "Speed", says more."""

from __future__ import annotations

import gc
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import sys
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import harness as h
from bench.corpora import articles, write
from bench.fts5 import Fts5Index
from bench.relevance import DEMARCHES_QUERIES, SHIPPED_QUERIES, load_queries
from kb.knowledge.build import build
from kb.knowledge.search.indexer import current_generation
from kb.knowledge.search.searcher import Snapshot

Query = tuple[str, bool]  # text, typed so far (last word a prefix)
# corpus: target p50 ms, p99 ms, incremental build s (None: no target)
TARGETS = {
    "shipped": (2.0, 10.0, None),
    "demarches": (2.0, 10.0, None),
    "alwaysdata": (2.0, 10.0, 1.0),
    "generated": (None, 50.0, 1.0),
}


class PeakMemory(threading.Thread):
    """PSS of this process and its children (shared pages once), largest sum seen in MB, every
    250 ms: every 20 ms, reading smaps_rollup (a walk of each process's pages under its memory
    lock) slowed a build of 20,000 articles from 45-60 s to 69-73 s. Its peak lasts seconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.25):
            pids = [os.getpid()]
            for task in Path("/proc/self/task").iterdir():
                pids += map(int, (task / "children").read_text().split())
            rollups = [h.read(f"/proc/{pid}/smaps_rollup") for pid in pids]
            found = [re.search(r"^Pss:\s+(\d+)", rollup, re.M) for rollup in rollups]
            self.peak = max(self.peak, sum(int(f[1]) for f in found if f) / 1024)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def _cpu() -> float:
    """CPU seconds of this process and its children."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def as_typed(queries: list[str], start: int = 2) -> list[Query]:
    """Each query as typed, keystroke by keystroke, then submitted in full."""
    typed: list[Query] = []
    for text in queries:
        typed += [(text[:i], True) for i in range(start, len(text))]
        typed.append((text, False))
    return typed


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def title_queries(content_dir: Path, count: int, seed: int = 0) -> list[str]:
    """Queries a user could type about the corpus: 2 to 4 words of a title, in order;
    one in four without accents, one in five with two letters swapped."""
    rng = random.Random(seed)
    heads = (path.read_text(encoding="utf-8")[:600] for path in articles(content_dir))
    found = (re.search(r"^title: *['\"]?(.+?)['\"]?$", head, re.M) for head in heads)
    titles = [title[1] for title in found if title]
    queries = []
    for title in rng.sample(titles, min(count, len(titles))):
        words = [w for w in re.findall(r"\w+", title) if len(w) > 2]
        if not words:
            continue
        size = min(len(words), rng.randint(2, 4))
        start = rng.randrange(len(words) - size + 1)
        chosen = words[start : start + size]
        if rng.random() < 0.2:
            i = max(range(len(chosen)), key=lambda k: len(chosen[k]))
            w = chosen[i]
            if len(w) > 4:
                j = rng.randrange(1, len(w) - 2)
                chosen[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        text = " ".join(chosen).lower()
        queries.append(_strip_accents(text) if rng.random() < 0.25 else text)
    return queries


def latency(search: Callable[[str, bool], object], queries: list[Query]) -> dict[str, float]:
    """p50 and p99 in ms, wall clock and CPU, of one pass over the searches."""
    wall, cpu = [], []
    gc.collect()
    for text, typed in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        search(text, typed)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    out = {}
    for name, times in (("", wall), ("cpu_", cpu)):
        out[f"{name}p50"] = statistics.median(times) * 1000
        out[f"{name}p99"] = h.percentile(times, 99) * 1000
    return out


def _edit_one(content_dir: Path) -> Path:
    """Append a sentence to one article, as an editor would; returns its path."""
    with open(path := articles(content_dir)[0], "a", encoding="utf-8") as handle:
        handle.write("\nUne phrase ajoutée pour mesurer la reconstruction incrémentale.\n")
    return path


def measure_kb(content_dir: Path, index_dir: Path, queries: list[Query]) -> dict[str, Any]:
    memory, cpu, start = PeakMemory(), _cpu(), time.perf_counter()
    memory.start()
    build(content_dir, index_dir, full=True)
    out: dict[str, Any] = {"full_s": time.perf_counter() - start, "build_cpu_s": _cpu() - cpu,
                           "build_mb": memory.stop()}  # fmt: skip
    generation = current_generation(index_dir)
    assert generation is not None
    out["size"] = sum(p.stat().st_size for p in generation.rglob("*") if p.is_file())
    start = time.perf_counter()
    snapshot = Snapshot(generation)
    out["open_ms"] = (time.perf_counter() - start) * 1000
    for run in ("first", "again"):
        out[run] = latency(lambda text, typed: snapshot.search(text, prefix=typed), queries)
    snapshot.close()
    snapshot = Snapshot(generation)  # suggestions as typed (/api/suggest), on a fresh index
    out["suggest"] = latency(lambda text, _: snapshot.suggest(text), [q for q in queries if q[1]])
    snapshot.close()
    edited, start, cpu = _edit_one(content_dir), time.perf_counter(), time.process_time()
    report = build(content_dir, index_dir)
    out["incremental_s"] = time.perf_counter() - start
    out["incremental_cpu_s"] = time.process_time() - cpu
    assert report.changed == 1, f"{edited}: expected one changed article, got {report.changed}"
    return out


def measure_fts5(content_dir: Path, db_path: Path, queries: list[Query]) -> dict[str, Any]:
    start = time.perf_counter()
    Fts5Index.build(content_dir, db_path).close()
    out: dict[str, Any] = {"full_s": time.perf_counter() - start, "size": db_path.stat().st_size}
    index = Fts5Index(sqlite3.connect(db_path))
    for run in ("first", "again"):
        out[run] = latency(lambda text, typed: index.page(text), queries)
    edited, start = _edit_one(content_dir), time.perf_counter()
    index.reindex(edited)
    out["incremental_s"] = time.perf_counter() - start
    index.close()
    return out


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _target(value: float, target: float | None, unit: str) -> str:
    return "" if target is None else f"< {target:g} {unit}: {'ok' if value < target else 'MISSED'}"


def table(name: str, articles: int, queries: list[Query], kb: dict, fts: dict) -> str:
    typed = sum(1 for _, t in queries if t)
    p50, p99, incremental = TARGETS[name]
    rows = [
        ("", "kb", "FTS5", "target"),
        ("full build", _seconds(kb["full_s"]), _seconds(fts["full_s"]), ""),
        ("  CPU time (all processes)", _seconds(kb["build_cpu_s"]), "-", ""),
        ("  peak memory (PSS, all)", f"{kb['build_mb']:.0f} MB", "-", ""),
        ("incremental build, 1 edit", _seconds(kb["incremental_s"]),
         _seconds(fts["incremental_s"]), _target(kb["incremental_s"], incremental, "s")),
        ("  CPU time", _seconds(kb["incremental_cpu_s"]), "-", ""),
        ("index size", _size(kb["size"]), _size(fts["size"]), ""),
        ("open the index", f"{kb['open_ms']:.0f} ms", "-", ""),
    ]  # fmt: skip
    for run, said in (("first", "first time"), ("again", "again")):
        for key, label, target in (("p50", f"search p50, {said}", p50),
                                   ("p99", f"search p99, {said}", p99),
                                   ("cpu_p50", "  CPU time p50", p50),
                                   ("cpu_p99", "  CPU time p99", p99)):  # fmt: skip
            k, f = kb[run][key], fts[run][key]
            rows.append((label, f"{k:.2f} ms", f"{f:.2f} ms", _target(k, target, "ms")))
    for key in ("p50", "p99"):
        rows.append((f"suggest {key}, first time", f"{kb['suggest'][key]:.2f} ms", "-", ""))
    return (
        f"{name}: {articles} articles, {len(queries)} searches ({len(queries) - typed} typed in "
        f"full, {typed} as typed so far); load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs\n" + h.table(rows, "<>><", "  ")
    )


def summary(name: str, kb: dict, fts: dict, targets: tuple) -> list[dict[str, str]]:
    p50, p99, incremental = targets
    k, f = kb["first"], fts["first"]
    ms = "{:.2f} ms / {:.2f} ms".format
    return [
        h.row(f"{name}: full build, CPU, peak PSS", f"{_seconds(kb['full_s'])}, "
              f"{_seconds(kb['build_cpu_s'])}, {kb['build_mb']:.0f} MB",
              f"FTS5 {_seconds(fts['full_s'])}"),
        h.row(f"{name}: incremental build (1 edit)", _seconds(kb["incremental_s"]),
              f"FTS5 {_seconds(fts['incremental_s'])}",
              _target(kb["incremental_s"], incremental, "s").split(":")[0],
              None if incremental is None else kb["incremental_s"] < incremental),
        h.row(f"{name}: suggest p50 / p99, first time", ms(kb["suggest"]["p50"],
              kb["suggest"]["p99"])),
        h.row(f"{name}: search p50 / p99, first time", ms(k["p50"], k["p99"]),
              "FTS5 " + ms(f["p50"], f["p99"]), " ; ".join(f"< {t:g} ms" for t in (p50, p99) if t),
              (p50 is None or k["p50"] < p50) and (p99 is None or k["p99"] < p99)),
    ]  # fmt: skip


def corpus(name: str, work: Path, generated: int) -> tuple[Path, list[Query]]:
    """The content folder of a corpus (copied or written into `work`) and its searches."""
    content = work / "content"
    write(name, content, generated)
    judged = {"shipped": SHIPPED_QUERIES, "demarches": DEMARCHES_QUERIES}.get(name)
    if judged:
        return content, as_typed([q.query for q in load_queries(judged)])
    return content, as_typed(title_queries(content, 120 if name == "alwaysdata" else 300))


def main() -> int:
    parser = h.parser("bench.speed", __doc__)
    parser.add_argument("--corpus", action="append", choices=list(TARGETS), help="repeat (all)")
    parser.add_argument("--generated", type=int, default=5000, help="articles to generate")
    args = parser.parse_args()
    h.in_tree(args, "bench.speed")
    figures, rows = {}, []
    with h.scratch("speed") as tmp:
        for name in args.corpus or list(TARGETS):
            work = tmp / name
            work.mkdir()
            content, queries = corpus(name, work, args.generated)
            count = len(articles(content))
            # Each side gets its own copy: the incremental build edits one article.
            shutil.copytree(content, work / "fts-content")
            kb = measure_kb(content, work / "kb-index", queries)
            fts = measure_fts5(work / "fts-content", work / "fts5.sqlite3", queries)
            print(table(name, count, queries, kb, fts) + "\n", flush=True)
            figures[name] = {"articles": count, "searches": len(queries), "kb": kb, "fts5": fts}
            rows += summary(f"{name} ({count} art.)", kb, fts, TARGETS[name])
    h.write_result("speed", args, figures, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
