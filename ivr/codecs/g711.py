"""G.711 µ-law (PCMU) and A-law (PCMA) for 8 kHz PCM16.

Two implementations with identical output: numpy lookup tables built here from the G.711 algorithm (a 65,536-entry
table indexed by the 16-bit sample to encode, 256 entries to decode), which work on any Python, and the stdlib
`audioop` (removed in Python 3.13), which is about five times faster on a 20 ms frame and is used when present.
"""
from __future__ import annotations

import warnings

import numpy as np

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as _audioop
except ImportError:  # Python 3.13+
    _audioop = None  # type: ignore[assignment]

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode", "encoder", "decoder", "silence_payload",
           "numpy_ulaw_encode", "numpy_ulaw_decode", "numpy_alaw_encode", "numpy_alaw_decode"]

_BIAS = 0x84


def _ulaw_byte(sample: int) -> int:
    # 14-bit magnitude as in the reference implementation (the shift comes before the sign is taken)
    value = sample >> 2
    mask = 0x7F if value < 0 else 0xFF
    mag = min(-value if value < 0 else value, 8159) + (_BIAS >> 2)
    exponent = max(mag.bit_length() - 6, 0)
    if exponent > 7:
        return 0x7F ^ mask
    return ((exponent << 4) | ((mag >> (exponent + 1)) & 0x0F)) ^ mask


def _ulaw_value(byte: int) -> int:
    u = ~byte & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return _BIAS - t if u & 0x80 else t - _BIAS


def _alaw_byte(sample: int) -> int:
    if sample >= 0:
        sign, mag = 0x80, sample >> 3
    else:
        sign, mag = 0x00, (-sample - 1) >> 3
    if mag < 32:
        code = mag >> 1
    else:
        exponent = mag.bit_length() - 5
        if exponent > 7:
            code = 0x7F
        else:
            code = (exponent << 4) | ((mag >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def _alaw_value(byte: int) -> int:
    a = byte ^ 0x55
    exponent = (a & 0x70) >> 4
    mantissa = a & 0x0F
    if exponent == 0:
        mag = (mantissa << 4) + 8
    else:
        mag = ((mantissa << 4) + 0x108) << (exponent - 1)
    return mag if a & 0x80 else -mag


_SAMPLES = range(-32768, 32768)
_ULAW_ENC = np.array([_ulaw_byte(s) for s in _SAMPLES], dtype=np.uint8)
_ALAW_ENC = np.array([_alaw_byte(s) for s in _SAMPLES], dtype=np.uint8)
_ULAW_DEC = np.array([_ulaw_value(b) for b in range(256)], dtype="<i2")
_ALAW_DEC = np.array([_alaw_value(b) for b in range(256)], dtype="<i2")


def _encode(table: np.ndarray, pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768
    return table[samples].tobytes()


def _decode(table: np.ndarray, data: bytes) -> bytes:
    return table[np.frombuffer(data, dtype=np.uint8)].tobytes()


def numpy_ulaw_encode(pcm: bytes) -> bytes:
    """PCM16 little-endian -> µ-law octets."""
    return _encode(_ULAW_ENC, pcm)


def numpy_ulaw_decode(data: bytes) -> bytes:
    """µ-law octets -> PCM16 little-endian."""
    return _decode(_ULAW_DEC, data)


def numpy_alaw_encode(pcm: bytes) -> bytes:
    return _encode(_ALAW_ENC, pcm)


def numpy_alaw_decode(data: bytes) -> bytes:
    return _decode(_ALAW_DEC, data)


if _audioop is not None:
    _lin2ulaw, _ulaw2lin, _lin2alaw, _alaw2lin = (_audioop.lin2ulaw, _audioop.ulaw2lin, _audioop.lin2alaw,
                                                  _audioop.alaw2lin)

    def ulaw_encode(pcm: bytes) -> bytes:
        return _lin2ulaw(pcm, 2)

    def ulaw_decode(data: bytes) -> bytes:
        return _ulaw2lin(data, 2)

    def alaw_encode(pcm: bytes) -> bytes:
        return _lin2alaw(pcm, 2)

    def alaw_decode(data: bytes) -> bytes:
        return _alaw2lin(data, 2)
else:
    ulaw_encode, ulaw_decode = numpy_ulaw_encode, numpy_ulaw_decode
    alaw_encode, alaw_decode = numpy_alaw_encode, numpy_alaw_decode


def encoder(codec: str):  # type: ignore[no-untyped-def]
    """The encode function for "PCMU" or "PCMA"."""
    return {"PCMU": ulaw_encode, "PCMA": alaw_encode}[codec]


def decoder(codec: str):  # type: ignore[no-untyped-def]
    return {"PCMU": ulaw_decode, "PCMA": alaw_decode}[codec]


def silence_payload(codec: str, samples: int = 160) -> bytes:
    """Encoded digital silence (0xFF for µ-law, 0xD5 for A-law)."""
    return bytes([0xFF if codec == "PCMU" else 0xD5]) * samples
