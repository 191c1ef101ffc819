"""Numbers said from rendered pieces: ticket numbers digit by digit, positions and minutes as cardinals.

A hotline cannot render every queue position or ticket number ahead of time, so the catalogue holds one
piece per digit and per unit (`num_0` .. `num_9`, `num_yao`, `num_liang`, `num_10`, `num_100`, `num_1000`,
`num_10000`) and these functions say which pieces to play. Digit strings are read the way Mandarin speakers
read phone and ticket numbers: 1 is 幺. Cardinals follow the usual rules: 十一 (not 一十一), 一百零五,
两千, 两位 when counting.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Digits", "Cardinal", "Part", "PIECES", "digit_pieces", "cardinal_pieces", "pieces_text",
           "queue_announcement"]

PIECES: dict[str, str] = {
    **{f"num_{d}": c for d, c in zip("0123456789", "零一二三四五六七八九")},
    "num_yao": "幺", "num_liang": "两", "num_10": "十", "num_100": "百", "num_1000": "千", "num_10000": "万",
}
"""Piece id -> the Mandarin it says; every id must be in the prompt catalogue."""

MAX_CARDINAL = 99_999_999


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
    if not value or not value.isdigit() or not value.isascii():
        raise ValueError(f"{value!r} is not a string of digits 0-9")
    return ["num_yao" if d == "1" else f"num_{d}" for d in value]


def cardinal_pieces(n: int, counting: bool = True) -> list[str]:
    """The pieces that say `n` (0..99,999,999) as a Mandarin number."""
    if not 0 <= n <= MAX_CARDINAL:
        raise ValueError(f"{n} is out of range 0..{MAX_CARDINAL}")
    if n == 0:
        return ["num_0"]
    if n == 2 and counting:
        return ["num_liang"]
    high, low = divmod(n, 10_000)
    out: list[str] = []
    if high:
        head = _below_10000(high, first=True)
        out += (["num_liang"] if head == ["num_2"] else head) + ["num_10000"]
        if low and low < 1000:
            out.append("num_0")
    if low:
        out += _below_10000(low, first=not high)
    return out


def _below_10000(n: int, first: bool) -> list[str]:
    out: list[str] = []
    zero_pending = False
    for unit, piece in ((1000, "num_1000"), (100, "num_100"), (10, "num_10"), (1, "")):
        d = (n // unit) % 10
        if d == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("num_0")
            zero_pending = False
        if unit == 10 and d == 1 and not out and first:
            out.append("num_10")  # 十五, not 一十五, at the head of a number
            continue
        digit = "num_liang" if d == 2 and unit >= 100 else f"num_{d}"
        out += [digit] + ([piece] if piece else [])
    return out


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
