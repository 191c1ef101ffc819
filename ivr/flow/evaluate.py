"""How well a flow's menus understand callers: accuracy and confusions per menu on a labelled set of phrasings,
by keywords alone and by keywords with meaning (the menu's `understand` family), as the runner decides.

The set is a TSV (``menu<TAB>expect<TAB>text``, ``#`` comments): the menu node, the choice expected (an option,
``agent``, ``repeat``, ``slower``, ``louder``, or ``none`` when the phrasing must stay a no-match) and the text a
recogniser heard.
"""
from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asr import intents, meaning
from ivr.errors import IvrError
from ivr.flow.model import Flow, Menu
from ivr.flow.runner import intent_menu

__all__ = ["EvalError", "Phrasing", "MenuScore", "load_phrasings", "evaluate_menus", "format_scores", "NONE"]

NONE = "none"


class EvalError(IvrError, ValueError):
    """A phrasings file that cannot be used with the flow; the message names the file and line."""


@dataclass(frozen=True)
class Phrasing:
    menu: str
    expect: str
    text: str


@dataclass(frozen=True)
class MenuScore:
    """One menu's figures: right by keywords alone and combined, and what was confused with what."""

    menu: str
    n: int
    keyword_right: int
    combined_right: int
    keyword_confusions: Counter[tuple[str, str]]  # (expected, got) -> count, wrong ones only
    combined_confusions: Counter[tuple[str, str]]

    @property
    def keyword_accuracy(self) -> float:
        return self.keyword_right / self.n if self.n else 0.0

    @property
    def combined_accuracy(self) -> float:
        return self.combined_right / self.n if self.n else 0.0


def load_phrasings(path: Path, flow: Flow) -> list[Phrasing]:
    """Read the set and check it against the flow: every menu is a menu node, every expected choice one it has."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalError(f"{path}: phrasings file not found") from None
    out = []
    for n, row in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if not row or row[0].startswith("#") or row == ["menu", "expect", "text"]:
            continue
        if len(row) != 3 or not all(c.strip() for c in row):
            raise EvalError(f"{path}:{n}: expected menu<TAB>expect<TAB>text")
        menu, expect, text = (c.strip() for c in row)
        node = flow.nodes.get(menu)
        if not isinstance(node, Menu):
            raise EvalError(f"{path}:{n}: {menu!r} is not a menu of flow {flow.name}")
        choices = {o.name for o in node.options} | set(intent_menu(node.options).builtins) | {NONE}
        if expect not in choices:
            raise EvalError(f"{path}:{n}: menu {menu} has no choice {expect!r}; it has {', '.join(sorted(choices))}")
        out.append(Phrasing(menu, expect, text))
    if not out:
        raise EvalError(f"{path}: no phrasings")
    return out


def _got(match: intents.IntentMatch | intents.NoMatch) -> str:
    return match.intent if isinstance(match, intents.IntentMatch) else NONE


def evaluate_menus(flow: Flow, phrasings: Sequence[Phrasing]) -> list[MenuScore]:
    """Each menu's score, in the order the set first names them."""
    by_menu: dict[str, list[Phrasing]] = {}
    for p in phrasings:
        by_menu.setdefault(p.menu, []).append(p)
    scores = []
    for menu_id, items in by_menu.items():
        node = flow.nodes[menu_id]
        assert isinstance(node, Menu)
        menu = intent_menu(node.options)
        model = meaning.family_model(node.understand) if node.understand else None
        right = {"keyword": 0, "combined": 0}
        confused: dict[str, Counter[tuple[str, str]]] = {"keyword": Counter(), "combined": Counter()}
        for p in items:
            for how, got in (("keyword", _got(menu.match_text(p.text))),
                             ("combined", _got(meaning.understand(menu, model, p.text)))):
                if got == p.expect:
                    right[how] += 1
                else:
                    confused[how][(p.expect, got)] += 1
        scores.append(MenuScore(menu_id, len(items), right["keyword"], right["combined"], confused["keyword"],
                                confused["combined"]))
    return scores


def format_scores(scores: Sequence[MenuScore], flow: Flow, max_confusions: int = 8) -> str:
    """Per menu: phrasings, keyword-only and combined accuracy, and the most frequent confusions of each."""
    lines = [f"{'menu':<16} {'family':<9} {'n':>4} {'keywords':>9} {'combined':>9}"]
    for s in scores:
        node = flow.nodes[s.menu]
        family = node.understand if isinstance(node, Menu) and node.understand else "-"
        lines.append(f"{s.menu:<16} {family:<9} {s.n:>4} {s.keyword_accuracy:>9.1%} {s.combined_accuracy:>9.1%}")
    total = sum(s.n for s in scores)
    lines.append(f"{'all':<16} {'':<9} {total:>4} {sum(s.keyword_right for s in scores) / total:>9.1%} "
                 f"{sum(s.combined_right for s in scores) / total:>9.1%}")
    for s in scores:
        for how, confusions in (("keywords", s.keyword_confusions), ("combined", s.combined_confusions)):
            if confusions:
                pairs = ", ".join(f"{e}->{g} x{k}" for (e, g), k in confusions.most_common(max_confusions))
                lines.append(f"  {s.menu} {how}: {pairs}")
    return "\n".join(lines)
