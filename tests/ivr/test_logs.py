"""Log records are safe to read: numbers masked, one line each, bounded, whatever a caller sent."""
from __future__ import annotations

import logging

import pytest

from ivr.logs import MAX_MESSAGE, MaskingFilter, mask_number, safe_message


@pytest.mark.parametrize("raw, logged", [
    ("call from 13812345678", "call from 138****5678"),
    ("call x\r\nFAKE 00:00:00 INFO forged line", "call x\\r\\nFAKE 00:00:00 INFO forged line"),
    ("ua \x1b[2J\x1b[31mred\x00", "ua \\x1b[2J\\x1b[31mred\\x00"),
    ("id \udcc3(", "id \\udcc3("),
    ("sep \u2028 and \x85", "sep \\u2028 and \\x85"),
    ("北京市朝阳区 12345 热线", "北京市朝阳区 12345 热线"),
])
def test_safe_message(raw: str, logged: str) -> None:
    assert safe_message(raw) == logged


def test_long_messages_are_cut_with_the_count() -> None:
    assert safe_message("a" * (MAX_MESSAGE + 10)) == "a" * MAX_MESSAGE + "... (10 more characters)"


def test_mask_number_keeps_short_numbers() -> None:
    assert mask_number("12345") == "12345" and mask_number("+86 138 1234 5678") == "+861******5678"


def test_filter_rewrites_records_with_arguments() -> None:
    record = logging.LogRecord("ivr.sip", logging.INFO, __file__, 1, "call %s from %s", ("a\nb", "13812345678"), None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "call a\\nb from 138****5678"


@pytest.mark.parametrize("raw, logged", [
    ("ticket 20261206001 opened for 13812345678", "ticket 20261206001 opened for 138****5678"),
    ("ticket 202612061234 (the 1234th of the day)", "ticket 202612061234 (the 1234th of the day)"),
    ("not a day 20261306001, a mobile abroad +20261206001", "not a day 202****6001, a mobile abroad +202****6001"),
])
def test_ticket_numbers_are_not_taken_for_phone_numbers(raw: str, logged: str) -> None:
    assert safe_message(raw) == logged


@pytest.mark.parametrize("number, shown", [
    ("84213365", "842*3365"), ("1234567", "123*567"), ("sip:84213365@10.0.0.5:5060", "sip:842*3365@10.0.0.5:5060"),
    ("sip:13800138000@10.0.0.1;user=phone", "sip:138****8000@10.0.0.1;user=phone"), ("110", "110"),
])
def test_a_known_number_is_masked_from_seven_digits(number: str, shown: str) -> None:
    assert mask_number(number) == shown
