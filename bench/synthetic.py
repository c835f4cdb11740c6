"""A deterministic synthetic French help center, for benchmarks at scale.

``generate(n, dest, seed)`` writes ``n`` articles of a CPRO-like help center (three
categories, titles made of an action, an object and a qualifier, bodies of 150-600 words
with headings, lists, notes and links) into the kb content directory ``dest``."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.corpora import relative_link, slugify, write_article, write_category

# The words and sentences articles are made of: data, not code (bench/synthetic.json).
_WORDS = json.loads((Path(__file__).parent / "synthetic.json").read_text(encoding="utf-8"))
_CATEGORY_INFO = _WORDS["categories"]  # folder: (title, order, description)
_ACTIONS = _WORDS["actions"]  # (verb, noun)
_PROBLEMS = _WORDS["problems"]  # what goes wrong with the object, by its gender and number
_QUALIFIERS, _TITLES = _WORDS["qualifiers"], _WORDS["titles"]
_MENUS, _BUTTONS, _ERRORS, _SPACES = (_WORDS[k] for k in ("menus", "buttons", "errors", "spaces"))
_INTRO, _SENTENCES, _HEADINGS = _WORDS["intro"], _WORDS["sentences"], _WORDS["headings"]
_STEPS, _BULLETS, _NOTES = _WORDS["steps"], _WORDS["bullets"], _WORDS["notes"]


def _de(obj: str) -> str:
    """The object after "de": "le mot de passe" -> "du mot de passe"."""
    de = (("le ", "du "), ("la ", "de la "), ("l'", "de l'"), ("les ", "des "))
    return next(d + obj[len(the) :] for the, d in de if obj.startswith(the))


# Per category: (the object, its "de" form, gender and number (m, f, mp, fp), keywords).
_OBJECTS = {
    category: [(obj, _de(obj), gender, keywords) for obj, gender, keywords in items]
    for category, items in _WORDS["objects"].items()
}
_ROLES = [  # (bare, with its article, with "à"): all masculine
    (role, f"l'{role}" if role[0] in "aeiouéè" else f"le {role}",
     f"à l'{role}" if role[0] in "aeiouéè" else f"au {role}")
    for role in _WORDS["roles"]
]  # fmt: skip


_RANDOM_SLOTS: dict[str, Callable[[random.Random], Any]] = {
    "k": lambda rng: rng.choice([2, 3, 5, 10, 15, 30, 48]),
    "menu": lambda rng: rng.choice(_MENUS),
    "button": lambda rng: rng.choice(_BUTTONS),
    "error": lambda rng: rng.choice(_ERRORS),
    "space": lambda rng: rng.choice(_SPACES),
}


def _fill(template: str, ctx: dict[str, Any], rng: random.Random) -> str:
    if "{" not in template:
        return template
    values = dict(ctx)
    for slot, draw in _RANDOM_SLOTS.items():
        if "{" + slot + "}" in template:
            values[slot] = draw(rng)
    if "ole" in template:
        values["role"], values["role_le"], values["role_au"] = rng.choice(_ROLES)
        values["Role_le"] = values["role_le"][0].upper() + values["role_le"][1:]
    return template.format(**values)


def _paragraph(rng: random.Random, ctx: dict[str, Any], pool: list[str], lo: int, hi: int) -> str:
    return " ".join(_fill(s, ctx, rng) for s in rng.sample(pool, rng.randint(lo, hi)))


def _synthetic_title(i: int, seed: int) -> tuple[str, str, str, dict[str, Any]]:
    rng = random.Random(f"kb-title-{seed}-{i}")
    category = rng.choice(list(_OBJECTS))
    obj, obj_de, gender, keywords = rng.choice(_OBJECTS[category])
    act, noun = rng.choice(_ACTIONS)
    qual = rng.choice(_QUALIFIERS).format(
        num=rng.randint(1000, 99999),
        uai=f"0{rng.randint(100000, 999999)}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}",
        cls=f"{rng.choice(['6e', '5e', '4e', '3e', '2nde', '1re', 'Tle'])} {rng.choice('ABCDEFG')}",
    )
    ctx = {"obj": obj, "obj_de": obj_de, "act": act, "Noun": noun, "qual": qual,
           "problem": rng.choice(_PROBLEMS[gender]), "keywords": keywords}  # fmt: skip
    title = rng.choice(_TITLES).format(**ctx)
    while len(title) > 90:  # kb warns about titles too long to read at a glance
        ctx["qual"] = ""
        title = rng.choice(_TITLES).format(**ctx)
    title = title[0].upper() + title[1:]
    slug = f"{slugify(title)[:70].rstrip('-')}-{i + 1}"
    return category, slug, title, ctx


def generate(n: int, dest: Path, seed: int = 0) -> int:
    """Write a deterministic synthetic French help center of ``n`` articles into ``dest``.

    Article ``i`` depends only on ``(seed, i)``, so ``generate(1000)`` is a prefix of
    ``generate(5000)``. Bodies have 150-600 words, ``##`` headings, numbered and bulleted
    lists, notes, and relative links to earlier articles.
    """
    for cat, (title, order, description) in _CATEGORY_INFO.items():
        write_category(dest / cat, title, order, description)
    heads = [_synthetic_title(i, seed) for i in range(n)]
    for i, (category, slug, title, ctx) in enumerate(heads):
        rng = random.Random(f"kb-body-{seed}-{i}")
        target = rng.randint(150, 600)
        blocks = [_paragraph(rng, ctx, _INTRO, 2, 4)]
        words = len(blocks[0].split())
        headings = rng.sample(_HEADINGS, len(_HEADINGS))
        while words < target and headings:
            section = [f"## {_fill(headings.pop(), ctx, rng)}"]
            kind = rng.random()
            if kind < 0.35:
                steps = rng.sample(_STEPS, rng.randint(3, 6))
                section.append(_paragraph(rng, ctx, _SENTENCES, 1, 2))
                numbered = [f"{k}. {_fill(s, ctx, rng)}" for k, s in enumerate(steps, 1)]
                section.append("\n".join(numbered))
            elif kind < 0.55:
                bullets = [
                    f"- {_fill(b, ctx, rng)}" for b in rng.sample(_BULLETS, rng.randint(2, 5))
                ]
                section += ["Vérifiez d'abord que :", "\n".join(bullets)]
                section.append(_paragraph(rng, ctx, _SENTENCES, 1, 3))
            else:
                section.append(_paragraph(rng, ctx, _SENTENCES, 2, 5))
                if rng.random() < 0.3:
                    section.append(f"> **Note :** {_fill(rng.choice(_NOTES), ctx, rng)}")
            if i and rng.random() < 0.25:
                other_cat, other_slug, other_title, _ = heads[rng.randrange(i)]
                link = relative_link(category, other_cat, other_slug)
                section.append(f"Voir aussi : [{other_title}]({link}).")
            text = "\n\n".join(section)
            count = len(text.split())
            if words + count > 600 and words >= 150:
                break
            blocks.append(text)
            words += count
        meta: dict[str, Any] = {
            "title": title,
            "summary": _fill(rng.choice(_INTRO), ctx, rng),
            "keywords": rng.sample(ctx["keywords"], rng.randint(1, len(ctx["keywords"]))),
        }
        if i > 0 and rng.random() < 0.3:
            meta["related"] = sorted({heads[rng.randrange(i)][1] for _ in range(rng.randint(1, 3))})
        if i < 3:
            meta["featured"] = i + 1
        if rng.random() < 0.2:
            meta["order"] = rng.randint(1, 20)
        if rng.random() < 0.02:
            meta["aliases"] = [f"{slug}-ancien"]
        meta["updated"] = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(900))
        write_article(dest / category / f"{slug}.md", meta, "\n\n".join(blocks))
    return n
