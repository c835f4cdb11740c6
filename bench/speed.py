"""Speed of kb's build and search beside SQLite FTS5, on the same articles and queries.

For each corpus, one table with kb and FTS5 side by side:

- full build: from the content folder to a usable index;
- incremental build: after one article was edited (kb: `build()` again, which reads the
  content, re-renders what changed and writes a new generation; FTS5: that row replaced);
- index size on disk;
- search latency in-process, p50 and p99, over a realistic list of queries, in two passes:
  "first time" runs each query once on a freshly opened index, so every word is read from
  disk when it first comes up; "again" runs the same list a second time (caches warm).
  kb returns a results page: ranked hits with highlighted titles and snippets, total and
  category facets. FTS5 returns the first ten rows with highlight() and snippet().
  Each latency is given twice: the wall clock (what a user waits for) and the CPU time of
  the process (what the search costs; on a busy machine the wall clock's p99 mostly
  measures the other processes).

The queries: on the shipped content and the demarches FAQ, the judged queries of
tests/relevance/ typed in full, plus every prefix a user types on the way (searched as you
type: the last word as a prefix); on alwaysdata (231 articles) and the generated corpus,
queries made of title words (some without accents, some with a typo), and their prefixes.

    python -m bench.speed [--corpus shipped|demarches|alwaysdata|generated ...]
                          [--generated 5000] [--tree DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import harness as h
from bench.corpora import ALWAYSDATA_SRC, DEMARCHES_SRC, import_alwaysdata, import_demarches
from bench.fts5 import Fts5Index
from bench.relevance import DEMARCHES_QUERIES, SHIPPED_CONTENT, SHIPPED_QUERIES, load_queries
from bench.synthetic import generate
from kb.knowledge.build import build
from kb.knowledge.search.indexer import current_generation
from kb.knowledge.search.searcher import Snapshot

Query = tuple[str, bool]  # text, typed so far (last word a prefix)

TARGETS = {
    # corpus: (p50 ms, p99 ms, incremental s); None: no target
    "shipped": (2.0, 10.0, None),
    "demarches": (2.0, 10.0, None),
    "alwaysdata": (2.0, 10.0, 1.0),
    "generated": (None, 50.0, 1.0),
}


@dataclass(frozen=True)
class Latency:
    """Milliseconds: p50 and p99 of the wall clock and of the process's CPU time."""

    first: tuple[float, float]
    first_cpu: tuple[float, float]
    again: tuple[float, float]
    again_cpu: tuple[float, float]


@dataclass(frozen=True)
class Measures:
    full_build: float  # seconds
    incremental: float  # seconds
    size: int  # bytes
    latency: Latency  # milliseconds
    open_ms: float = 0.0
    build_cpu: float = 0.0  # seconds, this process and its build processes
    build_mb: float = 0.0  # peak of the summed proportional set sizes (PSS) of those


class PeakMemory(threading.Thread):
    """Samples the PSS of this process and its children (the build's processes share pages:
    PSS counts each shared page once) every 20 ms; `peak` is the largest sum seen, in MB."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            pids = [os.getpid()]
            for task in Path("/proc/self/task").iterdir():
                pids += map(int, (task / "children").read_text().split())
            total = 0
            for pid in pids:
                try:
                    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                except OSError:
                    continue
                total += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M)[1])  # type: ignore[index]
            self.peak = max(self.peak, total / 1024)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def _cpu() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def as_typed(queries: list[str], start: int = 2) -> list[Query]:
    """Each query as typed, keystroke by keystroke, then submitted in full."""
    typed: list[Query] = []
    for text in queries:
        typed += [(text[:i], True) for i in range(start, len(text))]
        typed.append((text, False))
    return typed


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _articles(content_dir: Path) -> list[Path]:
    """The articles' files: folders starting with "_" (canned replies) are no categories."""
    return [p for p in sorted(content_dir.glob("*/*.md")) if not p.parent.name.startswith("_")]


def title_queries(content_dir: Path, count: int, seed: int = 0) -> list[str]:
    """Queries a user could type about the corpus: 2 to 4 words of a title, in order;
    one in four without accents, one in five with two letters swapped."""
    rng = random.Random(seed)
    titles = []
    for path in _articles(content_dir):
        head = path.read_text(encoding="utf-8")[:600]
        found = re.search(r"^title: *['\"]?(.+?)['\"]?$", head, re.M)
        if found:
            titles.append(found.group(1))
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


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _timed(
    search: Callable[[str, bool], object], queries: list[Query]
) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    gc.collect()
    for text, typed in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        search(text, typed)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def latency(search: Callable[[str, bool], object], queries: list[Query]) -> Latency:
    first, first_cpu = _timed(search, queries)
    again, again_cpu = _timed(search, queries)
    return Latency(
        percentiles(first), percentiles(first_cpu), percentiles(again), percentiles(again_cpu)
    )


def _directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _edit_one(content_dir: Path) -> Path:
    """Append a sentence to one article, as an editor would; returns its path."""
    path = _articles(content_dir)[0]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\nUne phrase ajoutée pour mesurer la reconstruction incrémentale.\n")
    return path


def measure_kb(content_dir: Path, index_dir: Path, queries: list[Query]) -> Measures:
    memory, cpu = PeakMemory(), _cpu()
    memory.start()
    start = time.perf_counter()
    build(content_dir, index_dir, full=True)
    full = time.perf_counter() - start
    build_cpu, build_mb = _cpu() - cpu, memory.stop()
    generation = current_generation(index_dir)
    assert generation is not None
    size = _directory_size(generation)
    start = time.perf_counter()
    snapshot = Snapshot(generation)
    open_ms = (time.perf_counter() - start) * 1000

    def search(text: str, typed: bool) -> object:
        return snapshot.search(text, prefix=typed)

    measured = latency(search, queries)
    snapshot.close()
    edited = _edit_one(content_dir)
    start = time.perf_counter()
    report = build(content_dir, index_dir)
    incremental = time.perf_counter() - start
    assert report.changed == 1, f"{edited}: expected one changed article, got {report.changed}"
    return Measures(full, incremental, size, measured, open_ms, build_cpu, build_mb)


def measure_fts5(content_dir: Path, db_path: Path, queries: list[Query]) -> Measures:
    start = time.perf_counter()
    index = Fts5Index.build(content_dir, db_path)
    full = time.perf_counter() - start
    index.close()
    size = db_path.stat().st_size
    index = Fts5Index.open(db_path)

    def search(text: str, typed: bool) -> object:
        return index.page(text)

    measured = latency(search, queries)
    edited = _edit_one(content_dir)
    start = time.perf_counter()
    index.reindex(edited)
    incremental = time.perf_counter() - start
    index.close()
    return Measures(full, incremental, size, measured)


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def format_table(
    name: str, articles: int, queries: list[Query], kb: Measures, fts: Measures
) -> str:
    typed = sum(1 for _, t in queries if t)
    p50_target, p99_target, incremental_target = TARGETS[name]
    rows = [
        ("full build", _seconds(kb.full_build), _seconds(fts.full_build), ""),
        ("  CPU time (all processes)", _seconds(kb.build_cpu), "-", ""),
        ("  peak memory (PSS, all)", f"{kb.build_mb:.0f} MB", "-", ""),
        (
            "incremental build, 1 edit",
            _seconds(kb.incremental),
            _seconds(fts.incremental),
            _target(kb.incremental, incremental_target, "s"),
        ),
        ("index size", _size(kb.size), _size(fts.size), ""),
        ("open the index", f"{kb.open_ms:.0f} ms", "-", ""),
    ]
    k, f = kb.latency, fts.latency
    for label, kb_ms, fts_ms, target in (
        ("search p50, first time", k.first[0], f.first[0], p50_target),
        ("search p99, first time", k.first[1], f.first[1], p99_target),
        ("  CPU time p50", k.first_cpu[0], f.first_cpu[0], p50_target),
        ("  CPU time p99", k.first_cpu[1], f.first_cpu[1], p99_target),
        ("search p50, again", k.again[0], f.again[0], p50_target),
        ("search p99, again", k.again[1], f.again[1], p99_target),
        ("  CPU time p50", k.again_cpu[0], f.again_cpu[0], p50_target),
        ("  CPU time p99", k.again_cpu[1], f.again_cpu[1], p99_target),
    ):
        rows.append((label, f"{kb_ms:.2f} ms", f"{fts_ms:.2f} ms", _target(kb_ms, target, "ms")))
    lines = [
        f"{name}: {articles} articles, {len(queries)} searches "
        f"({len(queries) - typed} typed in full, {typed} as typed so far); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        f"  {'':<28}{'kb':>10}{'FTS5':>10}  target",
    ]
    lines += [f"  {label:<28}{k:>10}{f:>10}  {t}".rstrip() for label, k, f, t in rows]
    return "\n".join(lines)


def _target(value: float, target: float | None, unit: str) -> str:
    if target is None:
        return ""
    return f"< {target:g} {unit}: {'ok' if value < target else 'MISSED'}"


def corpus(name: str, work: Path, generated: int) -> tuple[Path, list[Query]]:
    """The content folder of a corpus (copied or written into `work`) and its searches."""
    content = work / "content"
    if name == "shipped":
        shutil.copytree(SHIPPED_CONTENT, content)
        return content, as_typed([q.query for q in load_queries(SHIPPED_QUERIES)])
    if name == "demarches":
        import_demarches(DEMARCHES_SRC, content)
        return content, as_typed([q.query for q in load_queries(DEMARCHES_QUERIES)])
    if name == "alwaysdata":
        import_alwaysdata(ALWAYSDATA_SRC, content)
        return content, as_typed(title_queries(content, 120))
    generate(generated, content)
    return content, as_typed(title_queries(content, 300))


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        "python -m bench.speed", description=__doc__, formatter_class=raw
    )
    parser.add_argument("--corpus", action="append", choices=list(TARGETS), help="repeat (all)")
    parser.add_argument("--generated", type=int, default=5000, help="articles to generate")
    h.arguments(parser)
    args = parser.parse_args()
    h.in_tree(args, "bench.speed")
    figures, summary = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.corpus or list(TARGETS):
            work = Path(tmp) / name
            work.mkdir()
            content, queries = corpus(name, work, args.generated)
            articles = len(_articles(content))
            # Each side gets its own copy: the incremental build edits one article.
            shutil.copytree(content, work / "fts-content")
            kb = measure_kb(content, work / "kb-index", queries)
            fts = measure_fts5(work / "fts-content", work / "fts5.sqlite3", queries)
            print(format_table(name, articles, queries, kb, fts) + "\n", flush=True)
            figures[name] = {"articles": articles, "searches": len(queries),
                             "kb": asdict(kb), "fts5": asdict(fts)}  # fmt: skip
            summary += summary_rows(f"{name} ({articles} art.)", kb, fts, TARGETS[name])
    h.write_result("speed", args, figures, summary)
    return 0


def summary_rows(name: str, kb: Measures, fts: Measures, targets: tuple) -> list[dict[str, str]]:
    p50, p99, incremental = targets
    k, f = kb.latency, fts.latency
    ms = "{:.2f} ms / {:.2f} ms".format
    return [
        h.row(f"{name}: full build, CPU, peak PSS",
              f"{_seconds(kb.full_build)}, {_seconds(kb.build_cpu)}, {kb.build_mb:.0f} MB",
              f"FTS5 {_seconds(fts.full_build)}"),
        h.row(f"{name}: incremental build (1 edit)", _seconds(kb.incremental),
              f"FTS5 {_seconds(fts.incremental)}", _target(kb.incremental, incremental, "s"),
              None if incremental is None else kb.incremental < incremental),
        h.row(f"{name}: search p50 / p99, first time", ms(*k.first), "FTS5 " + ms(*f.first),
              " ; ".join(f"< {t:g} ms" for t in (p50, p99) if t),
              (p50 is None or k.first[0] < p50) and (p99 is None or k.first[1] < p99)),
        h.row(f"{name}: search p50 / p99, again", ms(*k.again), "FTS5 " + ms(*f.again)),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
