"""Logging set-up and phone-number masking: logs never carry a caller's full number.

Every record is also made safe to read: what a caller sent (a Call-ID, a URI, a display name) can hold control
characters, line breaks or kilobytes of text, so control characters are escaped (a record is always one line: no
forged log lines, no terminal escapes) and a message is cut at `MAX_MESSAGE` characters.
"""
from __future__ import annotations

import logging
import re

__all__ = ["mask_number", "safe_message", "MaskingFilter", "setup_logging", "MAX_MESSAGE"]

_NUMBER = re.compile(r"(?<!\d)(\+?\d{3})(\d{3,})(\d{4})(?!\d)")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
MAX_MESSAGE = 2000


def mask_number(number: str) -> str:
    """'13812345678' -> '138****5678'; short numbers (110, 12345) are left as they are."""
    digits = re.sub(r"[\s()-]", "", number)
    if len(re.sub(r"\D", "", digits)) < 7:
        return digits
    return _masked(digits)


def _masked(text: str) -> str:
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


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
