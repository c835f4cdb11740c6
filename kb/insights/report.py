"""The editors' report: what people search, read, judge and ask, and a chart drawn on the server."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import PARIS
from kb.tables import article_links, article_views, searches, suggestion_events, tickets, votes

AVOIDED_WINDOW = dt.timedelta(hours=1)
TOP = 10


@dataclass
class Report:
    since: dt.date
    until: dt.date
    searches: list[dict[str, Any]] = field(default_factory=list)
    no_result: list[dict[str, Any]] = field(default_factory=list)
    weak_results: list[dict[str, Any]] = field(default_factory=list)
    most_viewed: list[dict[str, Any]] = field(default_factory=list)
    helpfulness: list[dict[str, Any]] = field(default_factory=list)
    most_linked: list[dict[str, Any]] = field(default_factory=list)
    tickets_per_category: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        for row in data["daily"]:
            row["day"] = row["day"].isoformat()
        for row in data["no_result"] + data["weak_results"]:
            row["last_seen"] = row["last_seen"].isoformat()
        return data


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=PARIS).astimezone(dt.UTC)


def build(
    engine: Engine,
    listing: Sequence[dict[str, Any]],
    categories: dict[str, str],
    since: dt.date,
    until: dt.date,
    aliases: dict[str, str] | None = None,
) -> Report:
    """Every figure over [since, until], both days included (Paris time). Figures recorded
    under an article's old slug (`aliases`: old -> new) count for the article it now is."""
    titles = {a["slug"]: a["title"] for a in listing}
    current = (aliases or {}).get
    start, end = _start(since), _start(until + dt.timedelta(days=1))
    report = Report(since, until)
    with engine.connect() as c:
        in_days = searches.c.day.between(since, until)
        _searches(report, c.execute(sa.select(searches).where(in_days)).all())
        views: Counter[str] = Counter()
        for row in c.execute(
            sa.select(article_views.c.slug, sa.func.sum(article_views.c.views).label("views"))
            .where(article_views.c.day.between(since, until))
            .group_by(article_views.c.slug)
        ):
            views[current(row.slug, row.slug)] += int(row.views)
        report.most_viewed = [
            {"slug": slug, "title": titles.get(slug, slug), "views": n}
            for slug, n in sorted(views.items(), key=lambda sn: (-sn[1], sn[0]))[:TOP]
        ]
        yes, no = sa.func.sum(votes.c.helpful).label("yes"), sa.func.sum(votes.c.unhelpful)
        judged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in c.execute(
            sa.select(votes.c.slug, yes, no.label("no"))
            .where(votes.c.day.between(since, until))
            .group_by(votes.c.slug)
        ):
            counts = judged[current(row.slug, row.slug)]
            counts[0] += int(row.yes)
            counts[1] += int(row.no)
        report.helpfulness = [
            {"slug": slug, "title": titles.get(slug, slug), "yes": y, "no": n}
            for slug, (y, n) in sorted(judged.items())
        ]
        # The least helpful first: that is where editors have work.
        report.helpfulness.sort(key=lambda r: (r["yes"] / (r["yes"] + r["no"]), -r["no"]))
        linked: Counter[str] = Counter()
        for row in c.execute(
            sa.select(article_links.c.slug, sa.func.count().label("links"))
            .where(article_links.c.at >= start, article_links.c.at < end)
            .group_by(article_links.c.slug)
        ):
            linked[current(row.slug, row.slug)] += int(row.links)
        report.most_linked = [
            {"slug": slug, "title": titles.get(slug, slug), "links": n}
            for slug, n in sorted(linked.items(), key=lambda sn: (-sn[1], sn[0]))[:TOP]
        ]
        created = c.execute(
            sa.select(tickets.c.category, tickets.c.created_at, tickets.c.account_id).where(
                tickets.c.created_at >= start, tickets.c.created_at < end
            )
        ).all()
        opened = c.execute(
            sa.select(suggestion_events).where(
                suggestion_events.c.at >= start, suggestion_events.c.at < end
            )
        ).all()
        daily_searches = c.execute(
            sa.select(
                searches.c.day,
                sa.func.sum(searches.c.count),
                sa.func.sum(sa.case((searches.c.results == 0, searches.c.count), else_=0)),
            )
            .where(in_days)
            .group_by(searches.c.day)
        ).all()
    per_category = Counter(r.category for r in created)
    report.tickets_per_category = [
        {"category": slug, "title": title, "tickets": per_category.get(slug, 0)}
        for slug, title in categories.items()
    ]
    report.suggestions = _suggestions(opened, created, titles, current)
    report.daily = _daily(since, until, daily_searches, created)
    return report


def _suggestions(
    opened: Sequence[Any],
    created: Sequence[Any],
    titles: dict[str, str],
    current: Callable[[str, str], str],
) -> list[dict[str, Any]]:
    """Opens per article, and how many were not followed by a ticket within the hour."""
    tickets_by_account: dict[int, list[dt.datetime]] = defaultdict(list)
    for row in created:
        tickets_by_account[row.account_id].append(row.created_at)
    opens: Counter[str] = Counter()
    avoided: Counter[str] = Counter()
    for event in opened:
        at = event.at
        slug = current(event.slug, event.slug)
        opens[slug] += 1
        followed = any(
            at <= t <= at + AVOIDED_WINDOW for t in tickets_by_account.get(event.account_id, [])
        )
        if not followed:
            avoided[slug] += 1
    return [
        {"slug": slug, "title": titles.get(slug, slug), "opens": n, "avoided": avoided[slug]}
        for slug, n in opens.most_common(TOP)
    ]


def _searches(report: Report, rows: Sequence[Any]) -> None:
    """Searches per query over the days, shown as last typed; the empty and the weak ones
    apart, as what the content lacks."""
    total: Counter[str] = Counter()
    empty: Counter[str] = Counter()
    weak: Counter[str] = Counter()
    latest: dict[str, Any] = {}
    last_empty: dict[str, dt.datetime] = {}
    last_weak: dict[str, dt.datetime] = {}
    for row in rows:
        seen = row.last_seen
        total[row.query] += row.count
        if row.query not in latest or seen > latest[row.query].last_seen:
            latest[row.query] = row
        if row.results == 0:
            empty[row.query] += row.count
            last_empty[row.query] = max(seen, last_empty.get(row.query, seen))
        elif row.weak:
            weak[row.query] += row.count
            last_weak[row.query] = max(seen, last_weak.get(row.query, seen))

    def shown(query: str) -> str:
        return latest[query].spelling or query

    def top(counts: Counter[str], last: dict[str, dt.datetime]) -> list[str]:
        return sorted(counts, key=lambda q: (-counts[q], -last[q].timestamp(), q))[:TOP]

    report.searches = [
        {"query": shown(q), "count": total[q], "results": latest[q].results}
        for q in sorted(total, key=lambda q: (-total[q], q))[:TOP]
    ]
    report.no_result = [
        {"query": shown(q), "count": empty[q], "last_seen": last_empty[q]}
        for q in top(empty, last_empty)
    ]
    report.weak_results = [
        {"query": shown(q), "count": weak[q], "results": latest[q].results,
         "last_seen": last_weak[q]}
        for q in top(weak, last_weak)
    ]  # fmt: skip


def _daily(
    since: dt.date, until: dt.date, daily_searches: Sequence[Any], created: Sequence[Any]
) -> list[dict[str, Any]]:
    by_day = {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in daily_searches}
    tickets_by_day = Counter(r.created_at.astimezone(PARIS).date() for r in created)
    days = []
    day = since
    while day <= until:
        done, empty = by_day.get(day, (0, 0))
        days.append(
            {"day": day, "searches": done, "no_result": empty, "tickets": tickets_by_day[day]}
        )
        day += dt.timedelta(days=1)
    return days


# Each series has its own line (solid, dashed, dotted) and marker, so that colour is never
# the only difference; the colours themselves reach 3:1 on white.
SERIES = (
    ("searches", "Recherches", "#1f4e8c", "", "circle"),
    ("no_result", "Recherches sans résultat", "#a4161a", "8 5", "square"),
    ("tickets", "Tickets créés", "#1d5c2e", "2 4", "triangle"),
)
FONT = 14  # drawn at its own size in a scrolling box: never shrunk below legibility


def _marker(shape: str, cx: float, cy: float, colour: str) -> str:
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    return (
        f'<path d="M{cx:.1f} {cy - 5:.1f}L{cx + 5:.1f} {cy + 4:.1f}L{cx - 5:.1f} {cy + 4:.1f}Z" '
        f'fill="{colour}"/>'
    )


def chart_svg(daily: Sequence[dict[str, Any]], width: int = 760, height: int = 300) -> str:
    """A line chart in SVG, drawn here: no script; its data are also in a table beside it."""
    left, right, top, bottom = 52, 16, 16, 80
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1] + [d[s[0]] for d in daily for s in SERIES])
    step = plot_w / max(1, len(daily) - 1)

    def x(i: int) -> float:
        return left + i * step

    def y(value: int) -> float:
        return float(top + plot_h - value * plot_h / peak)

    totals = {s[0]: sum(d[s[0]] for d in daily) for s in SERIES}
    description = ", ".join(f"{s[1]} : {totals[s[0]]}" for s in SERIES)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title chart-desc" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Recherches, recherches sans résultat et tickets par jour</title>',
        f'<desc id="chart-desc">Totaux sur la période : {escape(description)}. '
        "Le détail jour par jour est dans le tableau qui suit le graphique.</desc>",
    ]
    for tick in range(5):
        value = round(peak * tick / 4)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#cfd8e3" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 5:.1f}" text-anchor="end" font-size="{FONT}" '
            f'fill="#4a5461">{value}</text>'
        )
    labels_every = max(1, len(daily) // 7)
    for i, d in enumerate(daily):
        if i % labels_every == 0 or i == len(daily) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 20}" text-anchor="middle" '
                f'font-size="{FONT}" fill="#4a5461">{d["day"].strftime("%d/%m")}</text>'
            )
    marks_every = max(1, len(daily) // 10)
    for key, _label, colour, dashes, shape in SERIES:
        points = " ".join(f"{x(i):.1f},{y(d[key]):.1f}" for i, d in enumerate(daily))
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2.5"{dash} points="{points}"/>'
        )
        parts.extend(
            _marker(shape, x(i), y(d[key]), colour)
            for i, d in enumerate(daily)
            if i % marks_every == 0 or i == len(daily) - 1
        )
    for n, (_, label, colour, dashes, shape) in enumerate(SERIES):
        lx, ly = left + n * 235, height - 24
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        parts.append(
            f'<line x1="{lx}" x2="{lx + 34}" y1="{ly}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="2.5"{dash}/>'
            + _marker(shape, lx + 17, ly, colour)
            + f'<text x="{lx + 42}" y="{ly + 5}" font-size="{FONT}" fill="#1b1f24">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
