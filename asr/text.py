"""Mandarin transcript normalisation: join Vosk's spaced words, full-width to half-width, numerals to digits.

Vosk's Chinese models return words separated by spaces ("我 的 电话 是 幺 三 八 ..."). `normalize` joins them
(a space is kept only between words of spaced scripts: Hangul, Latin, digits), folds full-width ASCII to
half-width, and writes Chinese numerals as digits where they are numbers a ticket needs: numbers read digit by
digit (phone numbers with 幺/两/洞, ticket numbers, years such as 二零二六), counted numbers with units
(一百二十三号, 三万五), decimals (三点五) and percentages (百分之五十), and single digits before an address, date,
time or money word (三号楼, 五单元, 十月, 两点). Words that only contain a numeral character (一起, 统一, 一些,
一下, 唯一, 万一, 千万, 十分, 一点) are left alone. Every conversion is returned as a `NumberSpan` with its
position in the output and the original text.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["NumberSpan", "NormalizedText", "join_words", "to_halfwidth", "numerals_to_digits", "normalize",
           "parse_cardinal", "DIGIT_VALUES"]

DIGIT_VALUES: dict[str, int] = {
    "零": 0, "〇": 0, "洞": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
    "七": 7, "拐": 7, "八": 8, "九": 9, "勾": 9,
}
"""Spoken digit characters, including the telephone/radio readings 幺 (1), 两 (2), 洞 (0), 拐 (7), 勾 (9)."""

_WEAK = frozenset("洞拐勾")  # digits only inside a digit-by-digit number: alone they are words (洞 hole, 拐 turn)
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_NUMERAL = frozenset(DIGIT_VALUES) | frozenset(_UNITS)
_MIN_DIGIT_RUN = 3  # shorter unit-less runs are approximations (三四天, 一两个) or words (一一)

# What may follow a lone digit for it to be a number. 一 is the most ambiguous character (一下, 一点, 一路, 一块儿),
# so it gets the narrower list.
_AFTER_DIGIT = ("号", "楼", "层", "栋", "幢", "单元", "室", "月", "日", "岁", "点", "元", "块钱", "路", "区", "期", "排",
                "号线", "年级")
_AFTER_ONE = ("号", "楼", "层", "栋", "幢", "单元", "室", "月", "日", "岁", "元", "号线", "年级", "点半", "点钟", "点多")
_AFTER_TEN = _AFTER_DIGIT + ("个", "天", "年", "分钟", "多")

Kind = Literal["digits", "cardinal", "decimal", "percent", "digit"]


@dataclass(frozen=True)
class NumberSpan:
    """One numeral written as digits: `text[start:end]` is `value`, read from `source`."""

    start: int
    end: int
    value: str
    source: str
    kind: Kind


@dataclass(frozen=True)
class NormalizedText:
    """The normalised transcript and the numbers found in it (positions refer to `text`)."""

    text: str
    numbers: tuple[NumberSpan, ...]

    def digits(self, min_length: int = 1) -> list[str]:
        """The numeric values found, in order, optionally only those with at least `min_length` characters."""
        return [n.value for n in self.numbers if len(n.value) >= min_length]


# -- joining and width -----------------------------------------------------------------------------------------

# Scripts written without spaces between words: CJK ideographs (with 々〇 and the Suzhou numerals), kana, and CJK
# and full-width punctuation. Everything else (Hangul, Latin, digits) keeps one space between words.
_UNSPACED = re.compile(r"[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                       r"\ufe30-\ufe4f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\U00020000-\U0003134f]")
_UNK = frozenset({"[unk]", "<unk>", "<UNK>"})


def _spaced(a: str, b: str) -> bool:
    return not (_UNSPACED.match(a[-1]) or _UNSPACED.match(b[0]))


def join_words(words: str | Iterable[str]) -> str:
    """Join recognised words: no space where either side is a CJK ideograph, kana or CJK/full-width punctuation;
    one space between words of spaced scripts (Hangul, Latin, digits).

    Accepts Vosk's space-separated text or a sequence of words; drops unknown-word markers such as `[unk]`.
    """
    tokens = words.split() if isinstance(words, str) else [t for w in words for t in w.split()]
    out = ""
    for token in tokens:
        if token in _UNK:
            continue
        if out and _spaced(out, token):
            out += " "
        out += token
    return out


def to_halfwidth(text: str) -> str:
    """Fold full-width ASCII forms (U+FF01-U+FF5E) and the ideographic space to their ASCII equivalents."""
    return "".join(
        chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else (" " if c == "\u3000" else c) for c in text)


# -- numerals --------------------------------------------------------------------------------------------------

def parse_cardinal(s: str) -> int | None:
    """The value of a counted numeral such as 一百二十三, 两千零五, 三万五 or 十二; None when malformed.

    A digit right after the last unit, with no 零 between, counts in the next lower unit (一百五 is 150).
    """
    if not s or any(c not in _NUMERAL or c in _WEAK for c in s):
        return None
    total = 0  # completed 万/亿 sections
    section = 0  # the part below 万 being built
    pending: int | None = None  # a digit waiting for its unit
    small_unit = 0  # last of 十/百/千 in this section
    last_unit = 0  # last unit of any size
    zero_seen = False
    for c in s:
        if c in DIGIT_VALUES:
            if pending is not None:
                return None  # two digits in a row: not a counted numeral
            if DIGIT_VALUES[c] == 0:
                zero_seen = True
            else:
                pending = DIGIT_VALUES[c]
            continue
        unit = _UNITS[c]
        if unit >= 10_000:
            value = section + (pending or 0)
            if value == 0:
                return None
            total = (total + value) * unit if unit > 10_000 else total + value * unit
            section, pending, small_unit, last_unit, zero_seen = 0, None, 0, unit, False
            continue
        if pending is None:
            if unit != 10:
                return None  # 百, 千 need a digit before them
            pending = 1  # 十二, 一百一十
        if small_unit and unit >= small_unit:
            return None  # units must fall: 十百, 百百
        section += pending * unit
        pending, small_unit, last_unit, zero_seen = None, unit, unit, False
    if pending is not None:
        if last_unit >= 100 and not zero_seen:
            pending *= last_unit // 10  # 一百五 -> 150, 三万五 -> 35000
        section += pending
    return total + section


def _matches_after(text: str, pos: int, words: tuple[str, ...]) -> bool:
    return any(text.startswith(w, pos) for w in words)


def _span_end(text: str, i: int) -> int:
    j = i
    while j < len(text) and text[j] in _NUMERAL:
        j += 1
    return j


def _digit_run(s: str) -> str | None:
    """The digit string of a unit-less run read digit by digit, or None if it is too short to be a number."""
    if any(c in _UNITS for c in s):
        return None
    strong = sum(c not in _WEAK for c in s)
    if len(s) < _MIN_DIGIT_RUN or strong < _MIN_DIGIT_RUN:
        return None
    return "".join(str(DIGIT_VALUES[c]) for c in s)


def _value_of(s: str, text: str, end: int, prev: str) -> tuple[str, Kind] | None:
    """Decide whether the numeral characters `s` (ending at `end` in `text`) are a number, and its digits."""
    run = _digit_run(s)
    if run is not None:
        return run, "digits"
    if len(s) == 1 and s in DIGIT_VALUES:
        if s in _WEAK or prev == "第":
            return None
        after = _AFTER_ONE if s in "一幺" else _AFTER_DIGIT
        clock = text.startswith("点", end) and end + 1 < len(text) and text[end + 1] in _NUMERAL  # 一点五十分
        if clock or _matches_after(text, end, after):
            return str(DIGIT_VALUES[s]), "digit"
        return None
    if s == "十":
        return ("10", "cardinal") if _matches_after(text, end, _AFTER_TEN) and prev != "第" else None
    if any(c in _UNITS for c in s):
        value = parse_cardinal(s)
        return (str(value), "cardinal") if value is not None else None
    return None


def _fraction(text: str, pos: int) -> tuple[str, int] | None:
    """The digits of a decimal fraction ("点五", "点二五") starting at `pos`, and where it ends."""
    if not text.startswith("点", pos):
        return None
    end = _span_end(text, pos + 1)
    frac = text[pos + 1:end]
    if not frac or any(c not in DIGIT_VALUES or c in _WEAK for c in frac):
        return None
    return "".join(str(DIGIT_VALUES[c]) for c in frac), end


def _percent_value(s: str) -> str | None:
    value = parse_cardinal(s)
    return str(value) if value is not None else _digit_run(s)


def numerals_to_digits(text: str) -> NormalizedText:
    """Write the Chinese numerals of `text` that are numbers as digits (see the module docstring for the rules)."""
    out: list[str] = []
    spans: list[NumberSpan] = []
    length = 0

    def emit(piece: str, source: str | None = None, kind: Kind | None = None) -> None:
        nonlocal length
        if source is not None and kind is not None:
            spans.append(NumberSpan(start=length, end=length + len(piece), value=piece, source=source, kind=kind))
        out.append(piece)
        length += len(piece)

    i, n = 0, len(text)
    while i < n:
        if text.startswith("百分之", i) and i + 3 < n and text[i + 3] in _NUMERAL:
            j = _span_end(text, i + 3)
            value = _percent_value(text[i + 3:j])
            if value is not None:
                emit(f"{value}%", text[i:j], "percent")
            else:
                emit(text[i:j])
            i = j
            continue
        if text[i] not in _NUMERAL:
            emit(text[i])
            i += 1
            continue
        j = _span_end(text, i)
        s = text[i:j]
        # 百/千/万/亿 with no digit before them are words (千万, 万一, 百姓): keep them as text
        k = 0
        while k < len(s) and s[k] in _UNITS and s[k] != "十":
            k += 1
        if k:
            emit(s[:k])
            i += k
            continue
        prev = text[i - 1] if i else ""
        counted = len(s) == 1 or any(c in _UNITS for c in s)
        whole = parse_cardinal(s) if counted and prev != "第" else None
        frac = _fraction(text, j) if whole is not None else None
        if frac is not None:
            digits, end = frac
            emit(f"{whole}.{digits}", text[i:end], "decimal")
            i = end
            continue
        decided = _value_of(s, text, j, prev)
        if decided is None:
            emit(s)
        else:
            emit(decided[0], s, decided[1])
        i = j
    return NormalizedText(text="".join(out), numbers=tuple(spans))


def normalize(words: str | Iterable[str]) -> NormalizedText:
    """Fold full-width ASCII, join Vosk's words and write numbers as digits."""
    folded = to_halfwidth(words) if isinstance(words, str) else [to_halfwidth(w) for w in words]
    return numerals_to_digits(join_words(folded))
