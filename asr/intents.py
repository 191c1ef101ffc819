"""Menu-intent matching on DTMF keys and on transcripts, tolerant of homophones and tones.

A `Menu` holds its options (intent, DTMF key, keywords/synonyms) plus built-in phrases shared by every menu
(转人工 -> agent, 再说一遍 -> repeat, and for confirmations 是的 -> yes, 不是 -> no). `Menu.match` takes a DTMF key
or a transcript and returns an `IntentMatch` (intent, score in 0..1, evidence) or a `NoMatch` saying why.

Scoring a transcript: every keyword is looked for in the transcript character by character, each syllable
scoring 1.0 for the same character, 0.92 for the same pinyin and tone (社保/设保), 0.85 for the same pinyin in
another tone, 0.75 for a usual confusion (zh/z, ch/c, sh/s, n/l, f/h, -ng/-n). Keywords of four or more syllables
may miss one. The keyword's similarity is weighted by how much of the utterance it covers once fillers (我要, 请,
嗯 ...) are set aside: score = similarity x (0.75 + 0.25 x coverage). One-syllable answers (是, 对) and ordinals
(第一个, 选二, 按三, 幺, 3: the option whose key or ordinal it names) count only when they are most of the
utterance; a one-syllable answer must sound the same, not merely alike. 星号/井号 name the keys * and #. A keyword
right after 不/别/不要/不用/没 is negated and ignored, and so is a keyword inside it (人工 in 别转人工).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from pypinyin import Style, lazy_pinyin, pinyin

from .text import DIGIT_VALUES, join_words, to_halfwidth

__all__ = [
    "MenuOption", "Evidence", "IntentMatch", "NoMatch", "Menu", "BUILTIN_PHRASES", "DEFAULT_THRESHOLD",
    "syllable_similarity", "menu_from_pairs", "SoundHit", "find_sounding", "fold_syllable",
]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.6
AMBIGUITY_MARGIN = 0.05

BUILTIN_PHRASES: dict[str, tuple[str, ...]] = {
    "agent": ("转人工", "人工服务", "人工客服", "人工", "客服", "找人工", "接人工", "找客服", "接线员", "话务员"),
    "repeat": ("重复", "再说一遍", "再说一次", "再讲一遍", "再放一遍", "没听清", "听不清", "没听见", "听不见",
               "没听懂", "什么意思", "再来一遍"),
    "slower": ("说慢点", "说慢一点", "慢点说", "慢一点", "慢点", "太快了", "说得太快"),
    "louder": ("大声点", "大声一点", "大点声", "声音大一点", "说大声点"),
    "yes": ("是的", "是", "对", "对的", "对对", "好的", "好", "没错", "可以", "行", "嗯", "确认", "正确"),
    "no": ("不是", "不对", "不要", "不用", "不行", "没有", "错了", "不", "否", "不需要", "取消"),
}
"""Phrases every menu understands, by intent. Menus choose which of these intents are active."""

_FILLERS = ("我想要", "我想", "我要", "我需要", "帮我", "给我", "麻烦", "请问", "请", "你好", "您好", "喂", "那个",
            "就是", "一下", "的", "了", "吧", "呢", "吗", "呀", "啊", "嗯", "呃", "哦", "噢", "诶", "哎")
_NEGATORS = ("不要", "不用", "不", "别", "没")
_SPOKEN_KEYS = {"星号": "*", "米字键": "*", "井号": "#", "井字键": "#"}
_ORDINAL_PREFIX = ("第", "选择", "选", "按")
_ORDINAL_SUFFIX = ("个", "项", "号", "键")
_SKIP = re.compile(r"[\s,.!?;:，。！？；：、…\"'“”‘’()（）\-]+")

EvidenceKind = Literal["dtmf", "keyword", "builtin", "ordinal", "spoken_key", "meaning"]


@dataclass(frozen=True)
class MenuOption:
    """One menu choice: the intent it selects, its DTMF key, and the words that name it."""

    intent: str
    key: str | None = None
    keywords: tuple[str, ...] = ()
    ordinal: int | None = None  # "第二个" selects ordinal 2; defaults to the key when it is 1..9

    def __post_init__(self) -> None:
        if self.key is not None and (len(self.key) != 1 or self.key not in "0123456789*#ABCD"):
            raise ValueError(f"option {self.intent!r}: DTMF key {self.key!r} is not one of 0-9 * # A-D")
        object.__setattr__(self, "keywords", tuple(self.keywords))
        if self.ordinal is None and self.key is not None and self.key in "123456789":
            object.__setattr__(self, "ordinal", int(self.key))


@dataclass(frozen=True)
class Evidence:
    """Why an intent was chosen: what matched, against which keyword, where, and how closely."""

    kind: EvidenceKind
    matched: str  # the transcript text (or the DTMF key) that matched
    target: str  # the keyword, ordinal or key it matched
    start: int = 0  # position of `matched` in `IntentMatch.transcript`
    end: int = 0
    similarity: float = 1.0
    pinyin: str = ""  # the keyword's pinyin when the match was by sound, not by characters


@dataclass(frozen=True)
class IntentMatch:
    """A recognised choice."""

    intent: str
    score: float
    evidence: Evidence
    key: str | None = None
    transcript: str = ""


@dataclass(frozen=True)
class NoMatch:
    """No choice reached the threshold (or two were too close to tell apart)."""

    reason: Literal["empty", "below_threshold", "ambiguous", "unknown_key"]
    best: IntentMatch | None = None
    runner_up: IntentMatch | None = None
    transcript: str = ""


# -- pinyin similarity -----------------------------------------------------------------------------------------

_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("h", "f"), ("r", "l"))
_FUZZY_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"), ("ong", "on"))


@lru_cache(maxsize=8192)
def _fuzzy(toneless: str) -> str:
    s = toneless
    for a, b in _FUZZY_INITIALS:
        if s.startswith(a):
            s = b + s[len(a):]
            break
    for a, b in _FUZZY_FINALS:
        if s.endswith(a):
            s = s[: -len(a)] + b
            break
    return s


def fold_syllable(toneless: str) -> str:
    """A toneless pinyin syllable with the usual confusions folded (zh/z, ch/c, sh/s, n/l, f/h, r/l, -ng/-n): two
    syllables a recogniser mistakes for each other fold to the same text (shi -> si, ling -> nin)."""
    return _fuzzy(toneless)


def _toneless(syllable: str) -> str:
    return syllable.rstrip("012345")


def _tone(syllable: str) -> str:
    return syllable[-1] if syllable[-1:].isdigit() else "5"


@lru_cache(maxsize=8192)
def _readings(char: str) -> frozenset[str]:
    """Every reading of one character in TONE3 style (neutral tone as 5); the character itself if not Chinese."""
    if not "\u3400" <= char <= "\u9fff":
        return frozenset()
    got = pinyin(char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)
    return frozenset(r for group in got for r in group if r != char)


def _syllable_score(a: frozenset[str], b: frozenset[str]) -> float:
    best = 0.0
    for x in a:
        for y in b:
            if x == y:
                return 0.92
            tx, ty = _toneless(x), _toneless(y)
            if tx == ty:
                best = max(best, 0.85)
            elif _fuzzy(tx) == _fuzzy(ty):
                best = max(best, 0.75)
    return best


def syllable_similarity(heard: str, expected: str) -> float:
    """How alike two characters sound: 1.0 same character, 0.92 same pinyin and tone, 0.85 other tone,
    0.75 a usual confusion (zh/z, n/l, -ng/-n ...), else 0."""
    if heard == expected:
        return 1.0
    return _syllable_score(_readings(heard), _readings(expected))


@lru_cache(maxsize=4096)
def _keyword_readings(keyword: str) -> tuple[frozenset[str], ...]:
    """Per character: the reading in the keyword's context (pypinyin phrases) plus the character's others."""
    context = lazy_pinyin(keyword, style=Style.TONE3, neutral_tone_with_five=True)
    if len(context) != len(keyword):
        return tuple(_readings(c) for c in keyword)
    return tuple(_readings(c) | {r} for c, r in zip(keyword, context))


# -- transcript scanning ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Hit:
    intent: str
    start: int
    end: int
    similarity: float
    target: str
    kind: EvidenceKind
    key: str | None


def _clean(transcript: str) -> str:
    return _SKIP.sub("", to_halfwidth(join_words(transcript))).lower()


def _window_similarity(text: str, start: int, keyword: str) -> float:
    readings = _keyword_readings(keyword)
    total = 0.0
    misses = 0
    allowed = 1 if len(keyword) >= 4 else 0
    for offset, expected in enumerate(keyword):
        heard = text[start + offset]
        if heard == expected:
            s = 1.0
        else:
            s = _syllable_score(_readings(heard), readings[offset])
        if len(keyword) == 1 and s < 0.85:
            return 0.0  # a one-syllable answer must sound the same, not merely alike (是/四)
        if s == 0.0:
            misses += 1
            if misses > allowed:
                return 0.0
        total += s
    return total / len(keyword)


@dataclass(frozen=True)
class SoundHit:
    """Where a phrase sounds in a text: `text[start:end]` and its similarity (see `syllable_similarity`, averaged)."""

    start: int
    end: int
    similarity: float


def find_sounding(text: str, phrase: str, floor: float) -> list[SoundHit]:
    """Every window of `text` that sounds like `phrase` with at least `floor` similarity (the menus' homophone and
    near-tone tolerance; a phrase of four or more syllables may miss one), best first, overlaps dropped."""
    hits = []
    for start in range(len(text) - len(phrase) + 1):
        sim = _window_similarity(text, start, phrase)
        if sim >= floor:
            hits.append(SoundHit(start, start + len(phrase), round(sim, 4)))
    kept: list[SoundHit] = []
    for hit in sorted(hits, key=lambda h: (-h.similarity, h.start)):
        if not any(hit.start < k.end and k.start < hit.end for k in kept):
            kept.append(hit)
    return kept


def _negated(text: str, start: int) -> bool:
    return any(text.endswith(n, 0, start) for n in _NEGATORS)


def _coverage(text: str, start: int, end: int) -> float:
    rest = text[:start] + "\0" + text[end:]
    for filler in _FILLERS:
        rest = rest.replace(filler, "")
    rest = rest.replace("\0", "")
    matched = end - start
    return matched / (matched + len(rest))


@dataclass(frozen=True)
class Menu:
    """A menu's options plus the built-in intents it accepts; match DTMF keys and transcripts against them."""

    options: tuple[MenuOption, ...]
    builtins: tuple[str, ...] = ("agent", "repeat")
    threshold: float = DEFAULT_THRESHOLD
    _phrases: tuple[tuple[str, str, str | None, EvidenceKind], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        options = tuple(self.options)
        object.__setattr__(self, "options", options)
        keys = [o.key for o in options if o.key is not None]
        if len(keys) != len(set(keys)):
            raise ValueError(f"menu has a DTMF key used twice: {sorted(keys)}")
        unknown = set(self.builtins) - set(BUILTIN_PHRASES)
        if unknown:
            raise ValueError(f"unknown built-in intents {sorted(unknown)}; known: {sorted(BUILTIN_PHRASES)}")
        phrases: list[tuple[str, str, str | None, EvidenceKind]] = []
        for o in options:
            for kw in o.keywords:
                cleaned = _clean(kw)
                if cleaned:
                    phrases.append((o.intent, cleaned, o.key, "keyword"))
        for intent in self.builtins:
            key = next((o.key for o in options if o.intent == intent), None)
            for kw in BUILTIN_PHRASES[intent]:
                phrases.append((intent, kw, key, "builtin"))
        object.__setattr__(self, "_phrases", tuple(phrases))

    @classmethod
    def confirm(cls, threshold: float = DEFAULT_THRESHOLD, yes_key: str = "1", no_key: str = "2") -> Menu:
        """A yes/no confirmation menu (keys 1 and 2 by default) that also accepts agent, repeat, slower and
        louder."""
        return cls((MenuOption("yes", yes_key), MenuOption("no", no_key)),
                   builtins=("yes", "no", "agent", "repeat", "slower", "louder"), threshold=threshold)

    # -- DTMF

    def match_dtmf(self, key: str) -> IntentMatch | NoMatch:
        """The option bound to DTMF `key`."""
        for o in self.options:
            if o.key == key:
                return IntentMatch(o.intent, 1.0, Evidence("dtmf", key, key, 0, len(key)), key=key,
                                   transcript=key)
        return NoMatch("unknown_key", transcript=key)

    # -- speech

    def match_text(self, transcript: str) -> IntentMatch | NoMatch:
        """The option a transcript names, scored; NoMatch when nothing reaches the threshold or it is a tie."""
        text = _clean(transcript)
        if not text:
            return NoMatch("empty", transcript=text)
        hits = self._keyword_hits(text) + self._ordinal_hits(text)
        kept = self._resolve_overlaps(hits)
        best_by_intent: dict[str, IntentMatch] = {}
        for hit in kept:
            match = self._score(text, hit)
            if match is None:
                continue
            current = best_by_intent.get(match.intent)
            if current is None or match.score > current.score:
                best_by_intent[match.intent] = match
        ranked = sorted(best_by_intent.values(), key=lambda m: m.score, reverse=True)
        if not ranked:
            return NoMatch("below_threshold", transcript=text)
        best = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        if best.score < self.threshold:
            return NoMatch("below_threshold", best=best, runner_up=runner_up, transcript=text)
        if runner_up is not None and best.score - runner_up.score < AMBIGUITY_MARGIN:
            return NoMatch("ambiguous", best=best, runner_up=runner_up, transcript=text)
        logger.debug("intent %s score %.2f from %r", best.intent, best.score, best.evidence.matched)
        return best

    def match(self, dtmf: str | None = None, transcript: str | None = None) -> IntentMatch | NoMatch:
        """A DTMF key wins over speech; otherwise match the transcript."""
        if dtmf:
            return self.match_dtmf(dtmf)
        return self.match_text(transcript or "")

    def _keyword_hits(self, text: str) -> list[_Hit]:
        hits = []
        negated: list[tuple[int, int]] = []
        for intent, keyword, key, kind in self._phrases:
            n = len(keyword)
            for start in range(len(text) - n + 1):
                sim = _window_similarity(text, start, keyword)
                if sim == 0.0:
                    continue
                if _negated(text, start) and not keyword.startswith(_NEGATORS):
                    negated.append((start, start + n))
                    continue
                hits.append(_Hit(intent, start, start + n, sim, keyword, kind, key))
        # a keyword inside a negated one is negated too (人工 in 别转人工)
        return [h for h in hits if not any(s <= h.start and h.end <= e for s, e in negated)]

    def _ordinal_hits(self, text: str) -> list[_Hit]:
        by_ordinal = {o.ordinal: o for o in self.options if o.ordinal is not None}
        by_key = {o.key: o for o in self.options if o.key is not None}
        hits = []
        for word, key in _SPOKEN_KEYS.items():
            for m in re.finditer(re.escape(word), text):
                if key in by_key:
                    hits.append(_Hit(by_key[key].intent, m.start(), m.end(), 1.0, key, "spoken_key", key))
        for start, ch in enumerate(text):
            value, sim = _ordinal_value(ch, len(text))
            option = by_key.get("0") if value == 0 else by_ordinal.get(value) if value is not None else None
            if option is None:
                continue
            begin, end = start, start + 1
            for prefix in _ORDINAL_PREFIX:
                if text.endswith(prefix, 0, start):
                    begin = start - len(prefix)
                    break
            for suffix in _ORDINAL_SUFFIX:
                if text.startswith(suffix, end):
                    end += len(suffix)
                    break
            if begin == start and sim < 1.0 and len(text) > 1:
                continue  # a homophone of a digit counts only as the whole answer ("儿" for 二)
            hits.append(_Hit(option.intent, begin, end, sim, str(value), "ordinal", option.key))
        return hits

    @staticmethod
    def _resolve_overlaps(hits: list[_Hit]) -> list[_Hit]:
        """Longer matches first; a shorter hit inside a longer one of another intent is dropped (是 in 不是)."""
        kept: list[_Hit] = []
        for hit in sorted(hits, key=lambda h: (h.end - h.start, h.similarity), reverse=True):
            if any(k.intent != hit.intent and hit.start < k.end and k.start < hit.end for k in kept):
                continue
            kept.append(hit)
        return kept

    def _score(self, text: str, hit: _Hit) -> IntentMatch | None:
        coverage = _coverage(text, hit.start, hit.end)
        if (hit.end - hit.start == 1 or hit.kind == "ordinal") and coverage < 0.5:
            return None  # a lone syllable or a number inside a sentence is not an answer (一个星期, 第一次)
        score = round(hit.similarity * (0.75 + 0.25 * coverage), 4)
        matched = text[hit.start:hit.end]
        sounds = "" if matched == hit.target or hit.kind == "ordinal" else " ".join(
            lazy_pinyin(hit.target, style=Style.TONE3))
        kind: EvidenceKind = hit.kind
        evidence = Evidence(kind, matched, hit.target, hit.start, hit.end, round(hit.similarity, 4), sounds)
        return IntentMatch(hit.intent, score, evidence, key=hit.key, transcript=text)


_DIGIT_SOUNDS = {"ling": 0, "yi": 1, "yao": 1, "er": 2, "liang": 2, "san": 3, "si": 4, "wu": 5, "liu": 6,
                 "qi": 7, "ba": 8, "jiu": 9}


def _ordinal_value(ch: str, length: int) -> tuple[int | None, float]:
    """The number a character names (一, 幺, 3; 0 for 零/洞, meaning the key 0) with 1.0, or when it is the whole
    utterance a digit homophone (儿 for 二) with 0.85."""
    if "0" <= ch <= "9":
        return int(ch), 1.0
    if ch in DIGIT_VALUES and ch not in "拐勾":
        return DIGIT_VALUES[ch], 1.0
    if length == 1:
        for reading in _readings(ch):
            value = _DIGIT_SOUNDS.get(_toneless(reading))
            if value is not None:
                return value, 0.85
    return None, 0.0


def menu_from_pairs(pairs: Iterable[tuple[str, str | None, Sequence[str]]], **kwargs: object) -> Menu:
    """Build a Menu from (intent, key, keywords) triples, as a flow file lists them."""
    return Menu(tuple(MenuOption(i, k, tuple(kw)) for i, k, kw in pairs), **kwargs)  # type: ignore[arg-type]
