"""French spacing: no-break spaces before ? ! ; : and inside « », so no sign starts a line."""

from __future__ import annotations

import re

NARROW_NBSP = "\u202f"  # espace fine insécable: before ? ! ;
NBSP = "\u00a0"  # espace insécable: before : and inside « »

# A plain space (or several) before the sign: the editor typed it, the renderer makes it hold.
_BEFORE_TIGHT = re.compile(r"[ \t]+([?!;])")
_BEFORE_COLON = re.compile(r"[ \t]+(:)(?=\s|$)")
_AFTER_OPENING = re.compile(r"«[ \t]+")
_BEFORE_CLOSING = re.compile(r"[ \t]+»")

# What the renderer cannot fix, since it cannot tell French from an address or a time: no space
# at all. "Pourquoi?" and «mot» read wrong; "10:30", "https://", "a;b" in code are left alone.
_MISSING_BEFORE = re.compile(r"(?<=[A-Za-zÀ-ÿœŒ)»])([?!;])(?=\s|$|[)».,])")
_MISSING_BEFORE_COLON = re.compile(r"(?<=[A-Za-zÀ-ÿœŒ)»]):(?=\s|$)")
_MISSING_INSIDE = re.compile(r"«(?=\S)|(?<=\S)»")


def french_spacing(text: str) -> str:
    """The same text, its spaces before ? ! ; : and inside « » made non-breaking."""
    if not any(sign in text for sign in "?!;:«»"):
        return text
    text = _BEFORE_TIGHT.sub(NARROW_NBSP + r"\1", text)
    text = _BEFORE_COLON.sub(NBSP + r"\1", text)
    text = _AFTER_OPENING.sub("«" + NBSP, text)
    return _BEFORE_CLOSING.sub(NBSP + "»", text)


def missing_spaces(text: str) -> list[str]:
    """The signs written with no space at all where French wants one, as « mot? »."""
    positions = sorted(
        match.start()
        for pattern in (_MISSING_BEFORE, _MISSING_BEFORE_COLON, _MISSING_INSIDE)
        for match in pattern.finditer(text)
    )
    found: list[str] = []
    for position in positions:
        start = max(text.rfind(" ", 0, position), text.rfind("\n", 0, position)) + 1
        ends = [i for i in (text.find(" ", position), text.find("\n", position)) if i >= 0]
        word = text[start : min(ends, default=len(text))]
        if word not in found:
            found.append(word)
    return found
