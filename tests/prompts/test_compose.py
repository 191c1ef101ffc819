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
    from prompts.compose import Counted, queue_announcement

    assert queue_announcement(3, 4) == [Counted("queue_position", 3), Counted("queue_wait_minutes", 4)]
    assert queue_announcement(2, 0) == [Counted("queue_position", 2), "queue_under_a_minute"]
    assert queue_announcement(0, 7) == ["queue_next"]


@pytest.mark.parametrize("number,groups", [
    ("13800138000", ["138", "0013", "8000"]),  # a mobile: 3-4-4
    ("01088886666", ["010", "8888", "6666"]),  # Beijing: a 3-digit area code, 8-digit line
    ("02088886666", ["020", "8888", "6666"]),
    ("075512345678", ["0755", "1234", "5678"]),  # a 4-digit area code
    ("05718886666", ["0571", "888", "6666"]),  # 7-digit line
    ("20261128001", ["2026", "1128", "001"]),  # a ticket number: date, then the day's serial
    ("12345", ["12345"]), ("110", ["110"]), ("88886666", ["8888", "6666"]),
])
def test_digit_groups(number: str, groups: list[str]) -> None:
    from prompts.compose import digit_groups

    assert digit_groups(number) == groups


def test_digit_groups_bad_input() -> None:
    from prompts.compose import digit_groups

    with pytest.raises(ValueError, match=r"^'' is not a string of digits 0-9$"):
        digit_groups("")
