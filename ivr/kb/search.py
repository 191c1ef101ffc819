"""Find the entry a caller asked for from what the recogniser heard, and say how sure.

Every entry is indexed by the features of its title, question forms and synonyms (`asr.textclass.features`: jieba
words, characters and character pairs, toneless pinyin syllables and syllable pairs, so 设保卡 finds 社保卡 and
公暖 finds 供暖 by sound). A question is scored against each entry by how much of the question the entry explains
and how much of the entry's closest form the question says, each feature weighted by its rarity across entries.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from asr.textclass import features
from ivr.kb.model import Entry

__all__ = ["KnowledgeBase", "Hit", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.6
_KIND_WEIGHT = {"w": 1.0, "c": 0.6, "p": 0.8}  # jieba words count most; characters and sounds back them up


@dataclass(frozen=True)
class Hit:
    """An entry found for a question; `score` in 0..1 says how sure the search is that it is the one asked for."""

    entry: Entry
    score: float


def _terms(text: str) -> set[str]:
    found = features(text, char_ngrams=(1, 2), pinyin_ngrams=(1, 2))
    return set(found)


def _kind_weight(term: str) -> float:
    weight = _KIND_WEIGHT[term[0]]
    return weight if " " in term or term[0] == "w" or len(term) > 3 else weight * 0.5  # single units count half


@dataclass
class _Index:
    entries: tuple[Entry, ...]
    forms: list[list[set[str]]] = field(default_factory=list)  # per entry: the terms of each form
    union: list[set[str]] = field(default_factory=list)
    idf: dict[str, float] = field(default_factory=dict)
    unseen: float = 0.0

    def __post_init__(self) -> None:
        df: Counter[str] = Counter()
        for entry in self.entries:
            forms = [_terms(t) for t in (entry.title, *entry.questions)]
            synonyms = set().union(*(_terms(s) for s in entry.synonyms)) if entry.synonyms else set()
            forms = [f | synonyms for f in forms]
            self.forms.append(forms)
            self.union.append(set().union(*forms))
            df.update(self.union[-1])
        n = max(len(self.entries), 1)
        self.idf = {t: math.log(1 + n / d) for t, d in df.items()}
        self.unseen = math.log(1 + n)

    def weight(self, term: str) -> float:
        return _kind_weight(term) * self.idf.get(term, self.unseen)

    def raw(self, query: set[str]) -> list[float]:
        total = sum(self.weight(t) for t in query)
        scores = []
        for union, forms in zip(self.union, self.forms):
            said = sum(self.weight(t) for t in query & union)
            explained = said / total if total else 0.0
            closest = max(sum(self.weight(t) for t in query & f) / (sum(self.weight(t) for t in f) or 1.0)
                          for f in forms)
            scores.append(math.sqrt(explained * closest))
        return scores


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

    def search(self, text: str, limit: int = 3) -> list[Hit]:
        """The best `limit` entries for a question, best first; none for a question with no words."""
        self.index()
        assert self._index is not None
        query = _terms(text)
        if not query:
            return []
        raw = self._index.raw(query)
        ranked = sorted(range(len(raw)), key=lambda i: (-raw[i], i))[:limit]
        return [Hit(self.entries[i], round(raw[i], 4)) for i in ranked if raw[i] > 0]
