"""French analysis: tokens, stop words, accent folding, stemming, synonyms."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
from whoosh.analysis import Analyzer, CharsetFilter, LowercaseFilter, RegexTokenizer, Tokenizer
from whoosh.analysis.acore import Token
from whoosh.lang import stopwords_for_language
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


_FIRST_WORDS = frozenset(words[0] for words in FIXED_EXPRESSIONS)
_LAST_WORDS = frozenset(words[-1] for words in FIXED_EXPRESSIONS)


def join_fixed(folded: list[str]) -> list[str]:
    """['mise', 'a', 'jour', 'du', 'navigateur'] -> ['miseajour', 'du', 'navigateur']."""
    if _LAST_WORDS.isdisjoint(folded):  # nearly always ("a" is common, "jour" is not)
        return folded
    out: list[str] = []
    i = 0
    while i < len(folded):
        if folded[i] in _FIRST_WORDS:
            for length in range(min(_LONGEST_FIXED, len(folded) - i), 1, -1):
                joined = FIXED_EXPRESSIONS.get(tuple(folded[i : i + length]))
                if joined:
                    out.append(joined)
                    i += length
                    break
            else:
                out.append(folded[i])
                i += 1
        else:
            out.append(folded[i])
            i += 1
    return out


def index_terms(text: str) -> list[str]:
    """The terms a ranked field indexes for `text`: its words lower-cased, fixed expressions
    joined, stop words dropped, folded, stemmed. The build computes them in its worker
    processes and hands Whoosh the list; queries go through `words` and `stem`, alike."""
    folded = join_fixed([w.translate(accent_map) for w in _WORD_RE.findall(text.lower())])
    terms: list[str] = _stemmer.stemWords([w for w in folded if w not in _FOLDED_STOP_WORDS])
    return terms


def spelling_terms(text: str) -> list[str]:
    """The whole folded words of `text`, as the spelling field indexes them."""
    return [w.translate(accent_map) for w in _WORD_RE.findall(text.lower())]


class FrenchTerms(Tokenizer):  # type: ignore[misc]
    """`index_terms` as a Whoosh analyzer, for what Whoosh analyzes itself (more_like)."""

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: object,
    ) -> Iterable[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for position, term in enumerate(index_terms(value) if tokenize else [value]):
            token.text = term
            token.boost = 1.0
            token.stopped = False
            if positions:
                token.pos = start_pos + position
            if chars:  # no offsets: snippets find their words in the text itself
                token.startchar = token.endchar = start_char
            yield token


def french_analyzer() -> Analyzer:
    """For the ranked fields: folded before stemming, or `securite` and `sécurité` stem apart."""
    return FrenchTerms()


def spelling_analyzer() -> Analyzer:
    """For suggestions and prefixes: folded whole words, not stemmed."""
    return RegexTokenizer(WORD_PATTERN) | LowercaseFilter() | CharsetFilter(accent_map)


# Snowball's French stemmer in C (PyStemmer): the same algorithm as Whoosh's pure-Python
# port, a newer release of it, and four times as fast on words not seen before.
_stemmer = Stemmer.Stemmer("french")


@lru_cache(maxsize=100_000)
def stem(folded_word: str) -> str:
    stemmed: str = _stemmer.stemWord(folded_word)
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
