"""The editors' report for a terminal: one table a section, with its column headers."""

from __future__ import annotations

import datetime as dt

from kb.clock import PARIS
from kb.insights.report import Report


def as_text(report: Report) -> str:
    """Every section of the report, aligned in columns under their headers."""
    sections = (
        ("Recherches les plus fréquentes", report.searches,
         (("query", "Recherche"), ("count", "Fois"), ("results", "Résultats"))),
        ("Recherches sans résultat (contenu à écrire)", report.no_result,
         (("query", "Recherche"), ("count", "Fois"), ("last_seen", "Dernière fois"))),
        ("Recherches aux résultats faibles (aucun ne répond à tous les mots)", report.weak_results,
         (("query", "Recherche"), ("count", "Fois"), ("results", "Résultats"),
          ("last_seen", "Dernière fois"))),
        ("Articles les plus lus", report.most_viewed,
         (("title", "Article"), ("views", "Lectures"))),
        ("Utilité (les moins utiles d'abord)", report.helpfulness,
         (("title", "Article"), ("yes", "Oui"), ("no", "Non"))),
        ("Articles les plus cités par le support", report.most_linked,
         (("title", "Article"), ("links", "Liens"))),
        ("Tickets par catégorie", report.tickets_per_category,
         (("title", "Catégorie"), ("tickets", "Tickets"))),
        ("Suggestions ouvertes (tickets évités)", report.suggestions,
         (("title", "Article"), ("opens", "Ouvertures"), ("avoided", "Tickets évités"))),
    )  # fmt: skip
    lines = [
        f"Rapport du {report.since.strftime('%d/%m/%Y')} au {report.until.strftime('%d/%m/%Y')}"
    ]
    for heading, rows, columns in sections:
        lines += ["", heading]
        if not rows:
            lines.append("  (rien sur la période)")
            continue
        table = [[label for _, label in columns]]
        table += [[_cell(row[key]) for key, _ in columns] for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
        for line in table:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    return str(value)
