"""How well the search finds the entry a caller asked for, and how often the line would speak a wrong answer.

The set is a TSV with the header ``question<TAB>expected``: what a recogniser heard and the entry id it asks for, or
``-`` for a question the knowledge base does not answer. An answer is spoken when the top hit is speakable today and
its score reaches the threshold; it is a wrong answer spoken when that hit is not the expected entry (or expected is
``-``). Search time is measured per question, the index built beforehand.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ivr.kb.loader import question_key
from ivr.kb.model import KbError
from ivr.kb.search import Hit, KnowledgeBase

__all__ = ["Question", "Outcome", "Report", "load_questions", "evaluate", "format_report", "NOT_ANSWERED",
           "SWEEP"]

NOT_ANSWERED = "-"
HEADER = ("question", "expected")
SWEEP = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)


@dataclass(frozen=True)
class Question:
    line: int
    text: str
    expected: str  # an entry id, or NOT_ANSWERED


@dataclass(frozen=True)
class Outcome:
    """One question's hits and how long the search took."""

    question: Question
    hits: tuple[Hit, ...]
    seconds: float

    def rank(self) -> int | None:
        """1-based rank of the expected entry among the hits, None if absent."""
        for i, hit in enumerate(self.hits, 1):
            if hit.entry.id == self.question.expected:
                return i
        return None

    def spoken(self, threshold: float, today: date | None) -> bool:
        """Whether the line would speak the top hit; `today` None treats every entry as speakable."""
        if not self.hits or self.hits[0].score < threshold:
            return False
        return today is None or self.hits[0].entry.speakable(today)

    def wrong_spoken(self, threshold: float, today: date | None) -> bool:
        return self.spoken(threshold, today) and self.hits[0].entry.id != self.question.expected


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Report:
    """The figures of one evaluation run."""

    outcomes: tuple[Outcome, ...]
    threshold: float
    today: date
    copied: tuple[Question, ...] = ()  # questions that are word for word an entry's own question form or title

    @property
    def answerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.question.expected != NOT_ANSWERED]

    def top(self, k: int) -> float:
        """Share of answerable questions whose entry is among the first k hits."""
        ranks = [o.rank() for o in self.answerable]
        return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0

    def wrong_spoken(self, threshold: float | None = None, every_entry: bool = False) -> int:
        """Questions that would hear a wrong answer; `every_entry` as if every entry were checked and current."""
        t = self.threshold if threshold is None else threshold
        return sum(o.wrong_spoken(t, None if every_entry else self.today) for o in self.outcomes)

    def right_spoken(self, threshold: float | None = None, every_entry: bool = False) -> int:
        """Answerable questions that would hear their own answer."""
        t = self.threshold if threshold is None else threshold
        return sum(o.spoken(t, None if every_entry else self.today) and o.rank() == 1 for o in self.answerable)

    def search_ms(self, q: float) -> float:
        return 1000 * _percentile([o.seconds for o in self.outcomes], q)


def load_questions(path: Path, kb: KnowledgeBase) -> list[Question]:
    """Read the set; every expected id must be an entry of the knowledge base (or `-`)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KbError(f"{path}: evaluation set not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KbError(f"{path}: cannot read the evaluation set ({exc})") from None
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        raise KbError(f"{path}:1: the header must be question<TAB>expected")
    questions = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise KbError(f"{path}:{number}: expected question<TAB>expected")
        text, expected = fields[0].strip(), fields[1].strip()
        if expected != NOT_ANSWERED and kb.get(expected) is None:
            raise KbError(f"{path}:{number}: {expected!r} is not an entry of the knowledge base")
        questions.append(Question(number, text, expected))
    if not questions:
        raise KbError(f"{path}: no questions")
    return questions


def evaluate(kb: KnowledgeBase, questions: Sequence[Question], threshold: float, today: date) -> Report:
    """Search every question (top three) and keep the hits and the time each search took."""
    kb.index()
    own = {question_key(form) for e in kb for form in (e.title, *e.questions)}
    copied = tuple(q for q in questions if question_key(q.text) in own)
    outcomes = []
    for question in questions:
        start = time.perf_counter()
        hits = kb.search(question.text, limit=3)
        outcomes.append(Outcome(question, tuple(hits), time.perf_counter() - start))
    return Report(tuple(outcomes), threshold, today, copied)


def _share(count: int, total: int) -> str:
    return f"{count}/{total} ({count / total:.1%})" if total else "0/0"


def format_report(report: Report, sweep: bool = False, misses: bool = False) -> str:
    """The figures as printed by `ivr kb evaluate`."""
    n, answerable = len(report.outcomes), len(report.answerable)
    unanswered = n - answerable
    lines = [
        f"questions: {n} ({answerable} answered by an entry, {unanswered} not)",
        f"top-1: {report.top(1):.1%}   top-3: {report.top(3):.1%}",
        f"threshold {report.threshold:.2f}, speakable entries on {report.today}:",
        f"  wrong answer spoken: {_share(report.wrong_spoken(), n)}",
        f"  right answer spoken: {_share(report.right_spoken(), answerable)}",
        f"  if every entry were checked: wrong {_share(report.wrong_spoken(every_entry=True), n)}, "
        f"right {_share(report.right_spoken(every_entry=True), answerable)}",
        f"search time per question: p50 {report.search_ms(0.5):.1f} ms, p95 {report.search_ms(0.95):.1f} ms",
    ]
    if report.copied:
        lines.insert(1, f"note: {len(report.copied)} questions are an entry's own question form or title word for "
                        f"word (lines {', '.join(str(q.line) for q in report.copied)}): keep the set apart")
    if sweep:
        lines.append("threshold  wrong spoken  right spoken   (every entry checked)")
        for t in SWEEP:
            wrong, right = report.wrong_spoken(t, True), report.right_spoken(t, True)
            lines.append(f"{t:>9.2f}  {wrong / n:>12.1%}  {right / answerable if answerable else 0:>12.1%}")
    if misses:
        for o in report.outcomes:
            unanswered_ok = o.question.expected == NOT_ANSWERED and not o.wrong_spoken(report.threshold, None)
            if o.rank() != 1 and not unanswered_ok:
                got = ", ".join(f"{h.entry.id} {h.score:.2f}" for h in o.hits) or "nothing"
                lines.append(f"line {o.question.line}: {o.question.text} -> expected {o.question.expected}, "
                             f"got {got}")
    return "\n".join(lines)
