"""Numbers said from rendered pieces: ticket numbers digit by digit, positions and minutes as cardinals.

A hotline cannot render every queue position or ticket number ahead of time, so the catalogue holds one
piece per digit and per unit (`num_0` .. `num_9`, `num_yao`, `num_liang`, `num_10`, `num_100`, `num_1000`,
`num_10000`) and these functions say which pieces to play. Digit strings are read the way Mandarin speakers
read phone and ticket numbers: 1 is 幺. Cardinals follow the usual rules: 十一 (not 一十一), 一百零五,
两千, 两位 when counting.
"""
from __future__ import annotations

from dataclasses import dataclass

from prompts.numbers import cardinal, digits

__all__ = ["Digits", "Cardinal", "Part", "PIECES", "digit_pieces", "cardinal_pieces", "pieces_text",
           "queue_announcement"]

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


Part = str | Digits | Cardinal  # a str is a prompt id


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
    parts: list[Part] = ["queue_next"] if position == 0 else ["queue_ahead", Cardinal(position), "queue_callers"]
    if position and minutes == 0:
        parts.append("queue_under_a_minute")
    elif position:
        parts += ["queue_wait", Cardinal(minutes), "queue_minutes"]
    return parts
