"""Find the entry a caller asked for from what the recogniser heard, and say how sure.

Every entry is indexed by the features of its title, question forms and synonyms (`asr.textclass.features`: jieba
words, characters and character pairs, toneless pinyin syllables and syllable pairs with the usual confusions folded
as the menus fold them (zh/z, n/l, -ng/-n), so 设保卡 finds 社保卡 and 公暖 finds 供暖 by sound). A question is
compared with each entry by how much of the question the entry explains and how much of the entry's closest form the
question says, each feature weighted by its kind and its rarity across entries (the similarity). The score turns the similarity and its lead over the next entry into the probability that the entry is
the one asked for, by a logistic calibration fitted on a labelled set of caller questions (`bench/kb_calibrate.py`,
`bench/kb_dev_questions.tsv`, kept apart from the evaluation set `kb/eval/questions.tsv`).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from asr.intents import fold_syllable
from asr.textclass import features
from ivr.kb.model import Entry

__all__ = ["KnowledgeBase", "Hit", "DEFAULT_THRESHOLD", "Calibration", "CALIBRATION"]

DEFAULT_THRESHOLD = 0.85  # bench/kb_calibrate.py: the lowest at which <= 0.5 % of the dev questions hear a wrong answer
# sounds count most, so that a misheard word (设保卡, 公暖) loses little; words and characters confirm them
_KIND_WEIGHT = {"w": 0.6, "c": 0.4, "p": 1.2}


@dataclass(frozen=True)
class Hit:
    """An entry found for a question; `score` in 0..1 says how sure the search is that it is the one asked for."""

    entry: Entry
    score: float


def _terms(text: str) -> set[str]:
    """jieba words, characters and pairs, and pinyin syllables and pairs folded as `asr.intents` folds them."""
    terms = set()
    for term in features(text, char_ngrams=(1, 2), pinyin_ngrams=(1, 2)):
        if term.startswith("p:"):
            term = "p:" + " ".join(fold_syllable(s) for s in term[2:].split(" "))
        terms.add(term)
    return terms


def _kind_weight(term: str) -> float:
    """The weight of a kind of term; a single character counts half a pair (a single syllable, which a misheard
    character keeps, counts whole: measured better on the dev set by bench/kb_calibrate.py, Brier 0.035 to 0.043)."""
    return _KIND_WEIGHT[term[0]] * (0.5 if term[0] == "c" and len(term) == 3 else 1.0)


@dataclass(frozen=True)
class Calibration:
    """score = 1 / (1 + exp(-(bias + similarity x weight + lead x lead_weight))), lead = the similarity minus the
    best other entry's."""

    bias: float
    weight: float
    lead_weight: float

    def score(self, similarity: float, lead: float) -> float:
        z = self.bias + self.weight * similarity + self.lead_weight * lead
        return 1.0 / (1.0 + math.exp(-z))


CALIBRATION = Calibration(bias=-3.78, weight=10.57, lead_weight=14.6)


class _Index:
    """Inverted lists from each term to the entries and forms (title, question forms) that have it."""

    def __init__(self, entries: tuple[Entry, ...]) -> None:
        forms: list[list[set[str]]] = []
        unions: list[set[str]] = []
        df: Counter[str] = Counter()
        for entry in entries:
            forms.append([_terms(t) for t in (entry.title, *entry.questions)])
            synonyms = set().union(*(_terms(s) for s in entry.synonyms))
            unions.append(set().union(synonyms, *forms[-1]))
            df.update(unions[-1])
        n = max(len(entries), 1)
        self.unseen = _kind_weight("w:") * math.log(1 + n)
        self.weights = {t: _kind_weight(t) * math.log(1 + n / d) for t, d in df.items()}
        self.entry_lists: dict[str, list[int]] = defaultdict(list)
        self.form_lists: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.form_weights: list[list[float]] = []
        for e, (union, entry_forms) in enumerate(zip(unions, forms)):
            for t in union:
                self.entry_lists[t].append(e)
            for f, terms in enumerate(entry_forms):
                for t in terms:
                    self.form_lists[t].append((e, f))
            self.form_weights.append([sum(self.weights[t] for t in terms) or 1.0 for terms in entry_forms])
        self.size = len(entries)

    def raw(self, query: set[str]) -> list[float]:
        total = sum(self.weights.get(t, self.unseen) for t in query)
        said = [0.0] * self.size
        form_said: dict[tuple[int, int], float] = defaultdict(float)
        for t in query:
            w = self.weights.get(t)
            if w is None:
                continue
            for e in self.entry_lists[t]:
                said[e] += w
            for ef in self.form_lists[t]:
                form_said[ef] += w
        closest = [0.0] * self.size
        for (e, f), s in form_said.items():
            closest[e] = max(closest[e], s / self.form_weights[e][f])
        return [math.sqrt(said[e] / total * closest[e]) if total else 0.0 for e in range(self.size)]


class KnowledgeBase:
    """The loaded entries of one knowledge-base folder, in file order, and their search index."""

    def __init__(self, entries: tuple[Entry, ...], directory: Path, digest: str) -> None:
        self.entries = entries
        self.directory = directory
        self.digest = digest
        self.by_id = {e.id: e for e in entries}
        self._index: _Index | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def get(self, entry_id: str) -> Entry | None:
        """The entry with this id, or None."""
        return self.by_id.get(entry_id)

    def speakable(self, today: date) -> list[Entry]:
        """The entries the line may say today."""
        return [e for e in self.entries if e.speakable(today)]

    def index(self) -> None:
        """Build the search index now (it is otherwise built by the first search)."""
        if self._index is None:
            self._index = _Index(self.entries)

    def similarities(self, text: str, limit: int = 3) -> list[tuple[Entry, float]]:
        """The best `limit` entries and their similarity (0..1, not calibrated), best first."""
        self.index()
        assert self._index is not None
        query = _terms(text)
        if not query:
            return []
        raw = self._index.raw(query)
        ranked = sorted(range(len(raw)), key=lambda i: (-raw[i], i))[: max(limit, 2)]
        return [(self.entries[i], raw[i]) for i in ranked if raw[i] > 0]

    def search(self, text: str, limit: int = 3, calibration: Calibration = CALIBRATION) -> list[Hit]:
        """The best `limit` entries for a question, best first; none for a question with no words.

        Every entry is searched, those the line may not speak too (unverified, expired): check
        `hit.entry.speakable(today)` before saying one. Searching only the speakable ones would let a neighbour of
        the entry asked for come first with a confident score (`ivr kb evaluate` counts it the same way).
        """
        ranked = self.similarities(text, limit)
        hits = []
        for i, (entry, similarity) in enumerate(ranked[:limit]):
            other = max((s for j, (_, s) in enumerate(ranked) if j != i), default=0.0)
            hits.append(Hit(entry, round(calibration.score(similarity, similarity - other), 4)))
        return hits
