"""Logging set-up and phone-number masking: logs never carry a caller's full number."""
from __future__ import annotations

import logging
import re

__all__ = ["mask_number", "MaskingFilter", "setup_logging"]

_NUMBER = re.compile(r"(?<!\d)(\+?\d{3})(\d{3,})(\d{4})(?!\d)")


def mask_number(number: str) -> str:
    """'13812345678' -> '138****5678'; short numbers (110, 12345) are left as they are."""
    digits = re.sub(r"[\s()-]", "", number)
    if len(re.sub(r"\D", "", digits)) < 7:
        return digits
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), digits)


class MaskingFilter(logging.Filter):
    """Masks anything that looks like a phone number in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
