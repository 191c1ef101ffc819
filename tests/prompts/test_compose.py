"""Numbers composed from pieces: digit by digit for ticket numbers, cardinals for positions and minutes."""
from __future__ import annotations

from pathlib import Path

import pytest

from prompts import load_catalogue
from prompts.compose import PIECES, cardinal_pieces, digit_pieces, pieces_text

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n,said", [
    (0, "零"), (1, "一"), (2, "两"), (7, "七"), (10, "十"), (11, "十一"), (15, "十五"), (20, "二十"), (22, "二十二"),
    (100, "一百"), (105, "一百零五"), (110, "一百一十"), (200, "两百"), (1001, "一千零一"), (1010, "一千零一十"),
    (2000, "两千"), (10005, "一万零五"), (12345, "一万两千三百四十五"), (20000, "两万"), (100000, "十万"),
    (1_000_100, "一百万零一百"),
])
def test_cardinals(n: int, said: str) -> None:
    assert pieces_text(cardinal_pieces(n)) == said


def test_two_when_not_counting() -> None:
    assert pieces_text(cardinal_pieces(2, counting=False)) == "二"


def test_ticket_numbers_digit_by_digit_with_yao() -> None:
    assert pieces_text(digit_pieces("20261128001")) == "二零二六幺幺二八零零幺"


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^'12a' is not a string of digits 0-9$"):
        digit_pieces("12a")
    with pytest.raises(ValueError, match=r"^100000000 is out of range 0..99999999$"):
        cardinal_pieces(100_000_000)


def test_every_piece_is_in_the_shipped_catalogue() -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    for pid, text in PIECES.items():
        assert catalogue[pid].text == text


def test_queue_announcement() -> None:
    from prompts.compose import Cardinal, queue_announcement

    assert queue_announcement(3, 4) == ["queue_ahead", Cardinal(3), "queue_callers", "queue_wait", Cardinal(4),
                                        "queue_minutes"]
    assert queue_announcement(2, 0) == ["queue_ahead", Cardinal(2), "queue_callers", "queue_under_a_minute"]
    assert queue_announcement(0, 0) == ["queue_next"]
    with pytest.raises(ValueError, match=r"^position -1 and wait 0 min must not be negative$"):
        queue_announcement(-1, 0)
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    for p in ("queue_ahead", "queue_callers", "queue_wait", "queue_minutes", "queue_next", "queue_under_a_minute"):
        assert p in catalogue
