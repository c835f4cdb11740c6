"""French analysis: tokens, stop words, accent folding, stemming, synonyms."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from whoosh.analysis import (
    Analyzer,
    CharsetFilter,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.analysis.acore import Token
from whoosh.lang import stopwords_for_language
from whoosh.lang.snowball.french import FrenchStemmer
from whoosh.support.charset import accent_map

# Words, with apostrophes and hyphens as separators: l'abonnement -> l, abonnement.
WORD_PATTERN = r"\w+"
_WORD_RE = re.compile(WORD_PATTERN)

# Question words and help-center filler: they say what kind of answer is wanted, not what about.
QUESTION_WORDS = frozenset(
    (
        "comment",
        "pourquoi",
        "quand",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "quoi",
        "combien",
        "où",
        "ou",
        "est-ce",
        "faire",
        "fais",
        "fait",
        "font",
        "faut",
        "peut",
        "peux",
        "puis",
        "dois",
        "doit",
        "veux",
        "voudrais",
        "souhaite",
        "souhaiterais",
        "aimerais",
        "besoin",
        "svp",
        "merci",
        "bonjour",
        "possible",
        "impossible",
    )
)
# What Whoosh's French list lacks: the auxiliaries themselves and conjunctions, demonstratives
# and the like, which say how a sentence is built, not what it is about.
FUNCTION_WORDS = frozenset(
    (
        "être",
        "avoir",
        "si",
        "ça",
        "cela",
        "ceci",
        "celui",
        "celle",
        "celles",
        "ceux",
        "dont",
        "jusque",
        "jusqu",
        "lorsque",
        "lorsqu",
        "puisque",
        "puisqu",
        "quelqu",
        "car",
        "donc",
        "alors",
        "aussi",
        "très",
        "ni",
        # Snowball's French list has "le", "la", "des", "ces" but not these.
        "les",
        "cet",
        "cette",
    )
)
STOP_WORDS = frozenset(stopwords_for_language("fr")) | QUESTION_WORDS | FUNCTION_WORDS
_FOLDED_STOP_WORDS = frozenset(w.translate(accent_map) for w in STOP_WORDS)

# Help-center synonyms and abbreviations, extended by content/synonymes.yml.
BUILTIN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("mdp", "mot de passe", "password", "mot-de-passe"),
    ("mail", "e-mail", "email", "courriel", "adresse électronique", "mél", "adresse mail"),
    ("identifiant", "login", "nom d'utilisateur"),
    ("se connecter", "connexion", "authentification"),
    ("se déconnecter", "déconnexion", "logout"),
    ("pj", "pièce jointe", "fichier joint"),
    ("importer", "import", "téléverser", "upload"),
    ("télécharger", "download"),
    ("navigateur", "browser"),
    ("modifier", "changer"),
    ("supprimer", "effacer"),
    ("facture", "facturation"),
    ("résilier", "résiliation"),
    ("ticket", "demande d'assistance", "demande d'aide"),
    ("assistance", "support", "aide"),
    ("antivirus", "anti-virus"),
    ("pare-feu", "firewall"),
    ("rgpd", "données personnelles"),
    ("bug", "bogue", "dysfonctionnement"),
    ("appli", "application"),
    ("oublié", "perdu"),
    ("bloqué", "verrouillé"),
    ("délai", "temps de réponse"),
    ("admin", "administrateur"),
    ("envoyer", "transmettre", "soumettre"),
    ("prévenir", "avertir", "notifier", "alerter"),
    ("notification", "alerte"),
    ("fermer", "clore", "clôturer"),
    ("rouvrir", "réouvrir"),
    ("reprendre", "continuer", "poursuivre"),
    ("arrêter", "interrompre", "stopper"),
    ("remplaçant", "successeur"),
    ("valider", "confirmer"),
    ("paramètres", "réglages", "préférences"),
    ("capture d'écran", "copie d'écran", "screenshot"),
    ("téléphone", "portable"),
    ("cookies", "témoins de connexion"),
)


def fold(text: str) -> str:
    """Lower case without accents, one character for one: offsets stay those of `text`."""
    return text.lower().translate(_FOLD_TABLE)


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x80, 0x250):
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[:1]
        if base and base != char and base.isascii() and len(char.lower()) == 1:
            table[code] = base.lower()
    table[ord("’")] = "'"
    return table


_FOLD_TABLE = _build_fold_table()


# Fixed expressions whose words mean something else on their own: "à jour" (up to date) is
# not a day. Indexed and searched as one word, so "le dernier jour" does not find them.
FIXED_EXPRESSIONS: dict[tuple[str, ...], str] = {
    ("mise", "a", "jour"): "miseajour",
    ("mises", "a", "jour"): "miseajour",
    ("a", "jour"): "ajour",
}
_LONGEST_FIXED = max(len(k) for k in FIXED_EXPRESSIONS)


def join_fixed(folded: list[str]) -> list[str]:
    """['mise', 'a', 'jour', 'du', 'navigateur'] -> ['miseajour', 'du', 'navigateur']."""
    out: list[str] = []
    i = 0
    while i < len(folded):
        for length in range(min(_LONGEST_FIXED, len(folded) - i), 1, -1):
            joined = FIXED_EXPRESSIONS.get(tuple(folded[i : i + length]))
            if joined:
                out.append(joined)
                i += length
                break
        else:
            out.append(folded[i])
            i += 1
    return out


_FIRST_WORDS = frozenset(words[0] for words in FIXED_EXPRESSIONS)
_LONGEST_FIRST = max(map(len, _FIRST_WORDS))


class FixedExpressionFilter(Filter):  # type: ignore[misc]  # Whoosh has no types
    """The index side of `join_fixed`, on Whoosh tokens (lower case, before stop words)."""

    def __call__(self, tokens: Iterable[Token]) -> Iterable[Token]:
        # Tokens are held (copied: the tokenizer reuses its token) only from a word that can
        # begin an expression; every other word goes straight through, in order.
        window: list[Token] = []
        for token in tokens:
            if not window and not _may_begin(token.text):
                yield token
                continue
            window.append(token.copy())
            while len(window) >= _LONGEST_FIXED:
                yield from self._emit(window)
        while window:
            yield from self._emit(window)

    def _emit(self, window: list[Token]) -> Iterable[Token]:
        folded = [t.text.translate(accent_map) for t in window]
        for length in range(min(_LONGEST_FIXED, len(window)), 1, -1):
            joined = FIXED_EXPRESSIONS.get(tuple(folded[:length]))
            if joined:
                first, last = window[0], window[length - 1]
                first.text = joined
                if hasattr(first, "endchar") and hasattr(last, "endchar"):
                    first.endchar = last.endchar
                del window[:length]
                yield first
                return
        yield window.pop(0)


def _may_begin(text: str) -> bool:
    return len(text) <= _LONGEST_FIRST and text.translate(accent_map) in _FIRST_WORDS


def french_analyzer() -> Analyzer:
    """For the ranked fields: folded before stemming, or `securite` and `sécurité` stem apart."""
    return (
        RegexTokenizer(WORD_PATTERN)
        | LowercaseFilter()
        | FixedExpressionFilter()
        | StopFilter(stoplist=STOP_WORDS, minsize=1)
        | CharsetFilter(accent_map)
        | StopFilter(stoplist=_FOLDED_STOP_WORDS, minsize=1)
        | StemFilter(lang="fr", cachesize=100_000)
    )


def spelling_analyzer() -> Analyzer:
    """For suggestions and prefixes: folded whole words, not stemmed."""
    return RegexTokenizer(WORD_PATTERN) | LowercaseFilter() | CharsetFilter(accent_map)


_stemmer = FrenchStemmer()


@lru_cache(maxsize=100_000)
def stem(folded_word: str) -> str:
    stemmed: str = _stemmer.stem(folded_word)
    return stemmed


def words(text: str) -> list[str]:
    """The folded words of a query, stop words included, in order, folded as the index folds."""
    return join_fixed(_WORD_RE.findall(text.lower().translate(accent_map)))


def is_stop(folded_word: str) -> bool:
    return folded_word in _FOLDED_STOP_WORDS


@dataclass(frozen=True)
class Synonyms:
    """Groups of equivalent expressions, matched on their stems so inflections match too."""

    groups: tuple[tuple[tuple[str, ...], ...], ...]  # each alternative as its stems
    index: dict[tuple[str, ...], int]  # stems of an expression -> its group
    longest: int

    @classmethod
    def from_groups(cls, groups: Iterable[Sequence[str]]) -> Synonyms:
        stemmed_groups: list[tuple[tuple[str, ...], ...]] = []
        index: dict[tuple[str, ...], int] = {}
        for group in groups:
            alternatives: list[tuple[str, ...]] = []
            for expression in group:
                stems = content_stems(expression)
                if stems and stems not in alternatives:
                    alternatives.append(stems)
            if len(alternatives) < 2:
                continue
            # Two groups sharing an expression are one group: merge them.
            merged = {index[a] for a in alternatives if a in index}
            if merged:
                target = min(merged)
                current = list(stemmed_groups[target])
                for other in sorted(merged - {target}):
                    current += [a for a in stemmed_groups[other] if a not in current]
                    stemmed_groups[other] = ()
                current += [a for a in alternatives if a not in current]
                stemmed_groups[target] = tuple(current)
                for a in current:
                    index[a] = target
            else:
                stemmed_groups.append(tuple(alternatives))
                for a in alternatives:
                    index[a] = len(stemmed_groups) - 1
        longest = max((len(k) for k in index), default=0)
        return cls(tuple(stemmed_groups), index, longest)

    def match(self, stems: Sequence[str], start: int) -> tuple[int, int] | None:
        """The longest expression starting at `start`: (its length, its group)."""
        for length in range(min(self.longest, len(stems) - start), 0, -1):
            group = self.index.get(tuple(stems[start : start + length]))
            if group is not None:
                return length, group
        return None


def content_stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words(text) if not is_stop(w))
