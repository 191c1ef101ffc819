"""Numbers said from rendered pieces: ticket numbers digit by digit, positions and minutes as cardinals.

A hotline cannot render every queue position or ticket number ahead of time, so the catalogue holds one
piece per digit and per unit (`num_0` .. `num_9`, `num_yao`, `num_liang`, `num_10`, `num_100`, `num_1000`,
`num_10000`) and these functions say which pieces to play. Digit strings are read the way Mandarin speakers
read phone and ticket numbers: 1 is 幺, in groups (`digit_groups`). Cardinals follow the usual rules: 十一 (not
一十一), 一百零五, 两千, 两位 when counting. A sentence whose count comes from a small known set (queue position,
minutes) is a `Counted` part: the library plays it whole when `ivr prompts build` rendered it for that count.
"""
from __future__ import annotations

from dataclasses import dataclass

from prompts.numbers import cardinal, digits

__all__ = ["Digits", "Cardinal", "Counted", "Part", "PIECES", "digit_groups", "digit_pieces", "cardinal_pieces",
           "pieces_text", "queue_announcement", "queue_position"]

PIECES: dict[str, str] = {
    **{f"num_{d}": c for d, c in zip("0123456789", "零一二三四五六七八九")},
    "num_yao": "幺", "num_liang": "两", "num_10": "十", "num_100": "百", "num_1000": "千", "num_10000": "万",
}
"""Piece id -> the Mandarin it says; every id must be in the prompt catalogue."""

_PIECE_OF = {text: pid for pid, text in PIECES.items()}


@dataclass(frozen=True)
class Digits:
    """A digit string read one digit at a time (ticket numbers, phone numbers)."""

    value: str


@dataclass(frozen=True)
class Cardinal:
    """A count read as a number (queue position, minutes); `counting` says 两 for 2 (两位, 两分钟)."""

    value: int
    counting: bool = True


@dataclass(frozen=True)
class Counted:
    """A counted sentence of the catalogue (queue_position, 15): the whole sentence rendered for that count when
    there is one, else its pieces around the count."""

    prompt: str
    n: int


Part = str | Digits | Cardinal | Counted  # a str is a prompt id


def digit_groups(value: str) -> list[str]:
    """How a number read digit by digit is grouped, with a pause between groups, as people read them out:
    a mobile number 3-4-4 (138 0013 8000), a fixed line after its area code (010 8888 6666, 0755 1234 5678),
    anything else of six digits or more in fours from the left (a ticket number 2026 1128 001); short ones whole."""
    digits(value)  # checks it
    if len(value) == 11 and value[0] == "1" and value[1] in "3456789":
        return [value[:3], value[3:7], value[7:]]
    if value[0] == "0" and len(value) >= 10:
        area = 3 if value[1] in "12" else 4
        return [value[:area], *_halves(value[area:])]
    if len(value) <= 5:
        return [value]
    return [value[i:i + 4] for i in range(0, len(value), 4)]


def _halves(local: str) -> list[str]:
    """A local number 7-8 digits long as two groups (888 6666, 8888 6666); longer in fours."""
    if len(local) <= 8:
        return [local[: len(local) - 4], local[-4:]]
    return [local[i:i + 4] for i in range(0, len(local), 4)]


def digit_pieces(value: str) -> list[str]:
    """``"2026"`` -> num_2 num_0 num_2 num_6; 1 is read 幺 as on the telephone."""
    return [_PIECE_OF[c] for c in digits(value)]


def cardinal_pieces(n: int, counting: bool = True) -> list[str]:
    """The pieces that say `n` (0..99,999,999) as a Mandarin number, as `prompts.numbers.cardinal` reads it."""
    return [_PIECE_OF[c] for c in cardinal(n, counting)]


def pieces_text(pieces: list[str]) -> str:
    """What the pieces say, e.g. for logs and tests: ``['num_10', 'num_5']`` -> 十五."""
    return "".join(PIECES[p] for p in pieces)


def queue_announcement(position: int, minutes: int) -> list[Part]:
    """What a queued caller hears: 您前面还有 N 位来电在等待，预计等待 M 分钟 (or 您是下一位 / 不到一分钟).

    `position` counts the callers ahead (0: this caller is next); `minutes` is the wait as the queue rounds it
    for callers (0: under a minute).
    """
    if position < 0 or minutes < 0:
        raise ValueError(f"position {position} and wait {minutes} min must not be negative")
    parts = queue_position(position)
    if position and minutes == 0:
        parts.append("queue_under_a_minute")
    elif position:
        parts.append(Counted("queue_wait_minutes", minutes))
    return parts


def queue_position(position: int) -> list[Part]:
    """您前面还有 N 位来电在等待, or 您是下一位 (`position` callers ahead)."""
    return ["queue_next"] if position == 0 else [Counted("queue_position", position)]
