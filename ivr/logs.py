"""Logging set-up and phone-number masking: logs never carry a caller's full number.

One mask for the whole product (logs, the CLI, the console): a phone number keeps its first three and last four
digits (138****5678). A value known to be a number (a caller ID, a callback number, a SIP URI) is masked from seven
digits on (842*3365); in free text only runs of ten digits or more are taken for phone numbers (shorter runs are
counts, ports and times more often than numbers). A ticket number (YYYYMMDD and a sequence, 20261206001) is never a
mainland phone number, which starts with 1 (mobile) or 0 (area code) or has seven or eight digits (local), so it is
left readable. Service numbers (110, 12345) are not private and stay as they are.

Every record is also made safe to read: what a caller sent (a Call-ID, a URI, a display name) can hold control
characters, line breaks or kilobytes of text, so control characters are escaped (a record is always one line: no
forged log lines, no terminal escapes) and a message is cut at `MAX_MESSAGE` characters.
"""
from __future__ import annotations

import logging
import re
from datetime import date

__all__ = ["mask_number", "is_ticket_number", "safe_message", "MaskingFilter", "setup_logging", "MAX_MESSAGE"]

_IN_TEXT = re.compile(r"(?<!\d)\+?\d{10,}(?!\d)")  # a phone number in free text
_IN_NUMBER = re.compile(r"(?<!\d)\+?\d{7,}(?!\d)")  # a phone number in a value known to hold one
_TICKET = re.compile(r"20\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3,5}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
MAX_MESSAGE = 2000


def mask_number(number: str) -> str:
    """A caller's number, callback number or SIP URI as logs and screens show it: '13812345678' -> '138****5678',
    'sip:84213365@10.0.0.5' -> 'sip:842*3365@10.0.0.5'; short numbers (110, 12345) are left as they are."""
    digits = re.sub(r"[\s()-]", "", number)
    if len(re.sub(r"\D", "", digits)) < 7:
        return digits
    return _IN_NUMBER.sub(_mask_run, digits)


def is_ticket_number(digits: str) -> bool:
    """Whether a run of digits is a ticket number: a real day (YYYYMMDD, 2000-2099) and a sequence of 3-5 digits."""
    if not _TICKET.fullmatch(digits):
        return False
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return True


def _mask_run(m: re.Match[str]) -> str:
    run = m.group()
    if is_ticket_number(run):
        return run
    plus, digits = ("+", run[1:]) if run.startswith("+") else ("", run)
    keep = 4 if len(digits) >= 8 else 3
    return plus + digits[:3] + "*" * (len(digits) - 3 - keep) + digits[-keep:]


def _masked(text: str) -> str:
    return _IN_TEXT.sub(_mask_run, text)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(c) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")


def safe_message(msg: str) -> str:
    """`msg` on one line: phone numbers masked, control characters escaped, cut at MAX_MESSAGE characters."""
    safe = _UNSAFE.sub(_escape, _masked(msg))
    if len(safe) > MAX_MESSAGE:
        safe = f"{safe[:MAX_MESSAGE]}... ({len(safe) - MAX_MESSAGE} more characters)"
    return safe


class MaskingFilter(logging.Filter):
    """Makes every record's message safe (`safe_message`); the traceback of an exception is left as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        safe = safe_message(msg)
        if safe != msg:
            record.msg, record.args = safe, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
