"""Relevance of kb's search beside SQLite FTS5 on judged queries: MRR@10, S@1 and R@3 per
kind of query, on the shipped content and on the demarches-simplifiees FAQ."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import harness as h
from bench.corpora import write
from bench.fts5 import Fts5Index
from kb.knowledge.build import build
from kb.knowledge.search import SearchIndex

SHIPPED_CONTENT = h.ROOT / "content"
SHIPPED_QUERIES = h.ROOT / "tests" / "relevance" / "shipped.yml"
DEMARCHES_QUERIES = h.ROOT / "tests" / "relevance" / "demarches.yml"
KINDS = ("title", "paraphrase", "accents", "typo", "inflection", "synonym", "question", "body")
ALL = "all"
TOP = 10


@dataclass(frozen=True)
class JudgedQuery:
    query: str
    kind: str
    relevant: tuple[str, ...]  # the articles that answer, best first


@dataclass(frozen=True)
class Scores:
    count: int
    mrr: float  # MRR@10
    success: float  # success@1
    recall: float  # recall@3


@dataclass(frozen=True)
class Evaluation:
    scores: dict[str, Scores]  # per kind, and ALL
    misses: list[str]  # the queries whose first result is not relevant, and what came


@dataclass(frozen=True)
class Comparison:
    name: str
    articles: int
    kb: Evaluation
    fts5: Evaluation


def load_queries(path: Path) -> list[JudgedQuery]:
    """The judged queries of a YAML file: a list of {query, kind, relevant}."""
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of judged queries")
    queries = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or set(item) != {"query", "kind", "relevant"}:
            raise ValueError(f"{path}: query {n}: expected the keys query, kind, relevant")
        relevant = [item["relevant"]] if isinstance(item["relevant"], str) else item["relevant"]
        queries.append(JudgedQuery(str(item["query"]), str(item["kind"]), tuple(relevant)))
    return queries


def evaluate(search: Callable[[str], list[str]], queries: list[JudgedQuery]) -> Evaluation:
    """MRR@10, success@1 and recall@3 per kind and overall."""
    per_kind: dict[str, list[tuple[float, float, float]]] = {}
    misses = []
    for q in queries:
        ranked = search(q.query)[:TOP]
        relevant = set(q.relevant)
        rank = next((i for i, slug in enumerate(ranked, 1) if slug in relevant), None)
        found3 = len(relevant.intersection(ranked[:3]))
        result = (1.0 / rank if rank else 0.0, float(rank == 1), found3 / min(len(relevant), 3))
        per_kind.setdefault(q.kind, []).append(result)
        per_kind.setdefault(ALL, []).append(result)
        if rank != 1:
            where, top = f"rank {rank}" if rank else "not in top 10", ", ".join(ranked[:3]) or "-"
            misses.append(
                f"[{q.kind}] {q.query!r}: {where}; top {top}; wanted {', '.join(q.relevant)}"
            )
    # Per kind: the number of queries, then the mean of each measure.
    scores = {
        kind: Scores(len(rows), *(sum(column) / len(rows) for column in zip(*rows, strict=True)))
        for kind, rows in per_kind.items()
    }
    return Evaluation(scores, misses)


def compare(name: str, content_dir: Path, queries: list[JudgedQuery], work: Path) -> Comparison:
    """Build kb and FTS5 over `content_dir` in `work`, then run the queries on both; kb is asked
    as the search page asks (the whole query, first page)."""
    report = build(content_dir, work / "kb-index", full=True)
    kb = SearchIndex(work / "kb-index").snapshot()
    kb_eval = evaluate(lambda q: [hit.slug for hit in kb.search(q, per_page=TOP).hits], queries)
    fts = Fts5Index.build(content_dir)
    fts_eval = evaluate(lambda q: [slug for slug, _, _ in fts.page(q, TOP)], queries)
    fts.close()
    return Comparison(name, report.articles, kb_eval, fts_eval)


def compare_set(name: str, work: Path) -> Comparison:
    """`compare` on a judged set: the shipped content, or the demarches FAQ imported in `work`."""
    if name == "shipped":
        return compare("shipped content", SHIPPED_CONTENT, load_queries(SHIPPED_QUERIES), work)
    content = work / "demarches-content"
    write("demarches", content)
    return compare("demarches-simplifiees FAQ", content, load_queries(DEMARCHES_QUERIES), work)


def format_comparison(c: Comparison) -> str:
    """One table: a row per kind, kb and FTS5 side by side for each measure."""
    rows: list[list[Any]] = [["kind", "n", "MRR@10 kb / FTS5", "S@1 kb / FTS5", "R@3 kb / FTS5"]]
    notes = []
    for kind in [kind for kind in (*KINDS, ALL) if kind in c.kb.scores]:
        k, f = c.kb.scores[kind], c.fts5.scores[kind]
        rows.append([kind, k.count])
        for a, b in ((k.mrr, f.mrr), (k.success, f.success), (k.recall, f.recall)):
            mark = "<" if a < b - 1e-9 else ("=" if abs(a - b) < 1e-9 else " ")
            rows[-1].append(f"{a:.3f} {mark} {b:.3f}")
        if k.mrr < f.mrr - 1e-9:
            notes.append(f"kb loses to FTS5 on {kind} (MRR@10)")
        elif abs(k.mrr - f.mrr) < 1e-9 and k.mrr < 1.0:
            notes.append(f"kb only ties FTS5 on {kind} (MRR@10)")
        elif abs(k.mrr - f.mrr) < 1e-9:
            notes.append(f"{kind}: both perfect (MRR@10 = 1.000): a tie is the best kb can do")
    lines = [f"{c.name}: {c.articles} articles, {c.kb.scores[ALL].count} judged queries"]
    lines += [h.table(rows, "<>>>>"), "('<' marks a measure where kb is below FTS5, '=' a tie)"]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def format_misses(name: str, evaluation: Evaluation) -> str:
    lines = [f"{name}: queries whose first result is not relevant", *evaluation.misses]
    return "\n  ".join(lines)


def main() -> int:
    parser = h.parser("bench.relevance", __doc__)
    parser.add_argument("--set", choices=["shipped", "demarches", "all"], default="all")
    parser.add_argument("--misses", action="store_true", help="list kb's and FTS5's misses")
    args = parser.parse_args()
    h.in_tree(args, "bench.relevance")
    figures, summary = {}, []
    with h.scratch("relevance") as tmp:
        for name in ["shipped", "demarches"] if args.set == "all" else [args.set]:
            (tmp / name).mkdir()
            c = compare_set(name, tmp / name)
            print(format_comparison(c) + "\n")
            if args.misses:
                print(format_misses("kb", c.kb) + "\n" + format_misses("FTS5", c.fts5) + "\n")
            figures[name] = {who: {kind: vars(s) for kind, s in e.scores.items()}
                             for who, e in (("kb", c.kb), ("fts5", c.fts5))}  # fmt: skip
            k, f = c.kb.scores[ALL], c.fts5.scores[ALL]
            kinds = [kind for kind, s in c.kb.scores.items() if s.mrr < c.fts5.scores[kind].mrr]
            summary.append(h.row(
                f"{c.name} ({k.count} queries): MRR@10 / S@1 / R@3",
                f"{k.mrr:.3f} / {k.success:.3f} / {k.recall:.3f}",
                f"FTS5 {f.mrr:.3f} / {f.success:.3f} / {f.recall:.3f}",
                "MRR@10 ≥ FTS5 on every kind" + (f" (not: {', '.join(kinds)})" if kinds else ""),
                not kinds,
            ))  # fmt: skip
    h.write_result("relevance", args, figures, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
