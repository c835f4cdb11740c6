"""The editors' commands: check, build, search, new, mv and the report (stats)."""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from kb.cli.operations import database
from kb.config import Settings
from kb.knowledge.build import BuildReport, build, check
from kb.knowledge.problems import display
from kb.knowledge.search import SearchIndex


def print_problems(problems: Sequence[object], stream: TextIO) -> None:
    for problem in problems:
        print(problem, file=stream)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    report = run_build(settings, full=args.full)
    if report.warnings:
        print(f"{len(report.warnings)} avertissement(s) :", file=sys.stderr)
        print_problems(report.warnings, sys.stderr)
    print(f"Index construit : {report.summary()}")
    return 1 if args.strict and report.warnings else 0


def run_build(settings: Settings, full: bool = False) -> BuildReport:
    """Build with a progress line on a terminal when there is much to do."""
    interactive = sys.stderr.isatty()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if total >= 200 and (now - last[0] > 0.5 or done == total):
            last[0] = now
            end = "\n" if done == total else ("\r" if interactive else "\n")
            print(f"  {done}/{total} articles indexés", end=end, file=sys.stderr, flush=True)

    return build(settings.content_dir, settings.index_dir, full=full, progress=progress)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    content, problems = check(settings.content_dir)
    errors = [p for p in problems if not p.warning]
    warnings = [p for p in problems if p.warning]
    print_problems(errors, sys.stdout)
    if warnings:
        print(f"{len(warnings)} avertissement(s) :")
        print_problems(warnings, sys.stdout)
    counted = f"{len(content.articles)} articles, {len(content.categories)} catégories"
    if errors:
        also = f" et {len(warnings)} avertissement(s)" if warnings else ""
        print(f"Échec : {len(errors)} erreur(s){also} ({counted}).")
        return 1
    if args.strict and warnings:
        print(f"Échec (--strict) : {len(warnings)} avertissement(s), aucune erreur ({counted}).")
        return 1
    print(f"Contenu valide : {counted}.")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    snapshot = SearchIndex(settings.index_dir).snapshot()
    results = snapshot.search(args.query, category=args.category, per_page=min(args.limit, 50))
    if args.json:
        print(json.dumps(results.as_json(), ensure_ascii=False, indent=2))
        return 0
    if results.empty_query:
        print("Saisissez un ou plusieurs mots à chercher.")
        return 0
    if results.suggestion:
        print(f"Essayez avec : {results.suggestion}")
    if not results.hits:
        print(f"Aucun article ne correspond à « {results.query} ».")
        return 0
    print(f"{results.total} résultat(s) pour « {results.query} »")
    for rank, hit in enumerate(results.hits, 1):
        snippet = hit.snippet.replace("<mark>", "[").replace("</mark>", "]")
        print(f"{rank:>2}. {hit.title}  ({hit.category}, {hit.score:.2f})  {hit.url}")
        print(f"    {html.unescape(snippet)}")
    return 0


def cmd_new(args: argparse.Namespace, settings: Settings) -> int:
    from kb.clock import today
    from kb.knowledge.authoring import new_article

    path = new_article(settings.content_dir, args.title, args.category, today(), slug=args.slug)
    print(f"Article créé (brouillon) : {path}")
    print("Complétez-le, retirez « draft: true » pour le publier, puis lancez kb check.")
    return 0


def cmd_mv(args: argparse.Namespace, settings: Settings) -> int:
    from kb.knowledge.moving import move_article

    move = move_article(settings.content_dir, args.article, args.destination)
    print(f"Article déplacé : {display(move.old_path)} -> {display(move.new_path)}")
    if move.new_slug != move.old_slug:
        print(
            f"Nouvelle adresse « {move.new_slug} » ; « {move.old_slug} » reste dans « aliases » "
            "et y redirige."
        )
    for path in move.rewritten:
        print(f"  liens mis à jour : {display(path)}")
    print("Lancez kb check, puis enregistrez (commit) ces fichiers ensemble.")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from kb.clock import today
    from kb.insights import report, report_text

    until = args.until or today()
    since = args.since or until - dt.timedelta(days=29)
    snapshot = SearchIndex(settings.index_dir).snapshot()
    categories = {c["slug"]: c["title"] for c in snapshot.categories}
    with database(settings) as engine:
        built = report.build(
            engine, snapshot.listing, categories, since, until, aliases=snapshot.aliases
        )
    if args.json:
        print(json.dumps(built.as_json(), ensure_ascii=False, indent=2, default=str))
        return 0
    print(report_text.as_text(built))
    return 0
