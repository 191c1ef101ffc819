"""DTMF keys: RFC 4733 telephone events (`TelephoneEvent`, `DtmfReceiver`) and the in-band tone detector
(`DtmfDetector().feed(pcm) -> [Detection(digit, t_ms)]`, `detect_digits(pcm)`).

Exceptions: `DtmfEventError` (ValueError) for an unusable telephone-event payload.
"""
from ivr.dtmf.inband import Detection, DtmfDetector, detect_digits
from ivr.dtmf.rfc4733 import DtmfEventError, DtmfReceiver, KeyPress, TelephoneEvent

__all__ = ["Detection", "DtmfDetector", "detect_digits", "DtmfEventError", "DtmfReceiver", "KeyPress",
           "TelephoneEvent"]
