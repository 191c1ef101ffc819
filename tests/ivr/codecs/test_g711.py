import warnings

import numpy as np
import pytest

from ivr.codecs import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_numpy_ulaw_matches_the_reference_implementation_on_every_sample() -> None:
    assert g711.numpy_ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert g711.numpy_ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_numpy_alaw_matches_the_reference_implementation_on_every_sample() -> None:
    assert g711.numpy_alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)
    assert g711.numpy_alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_public_functions_agree_with_numpy_tables() -> None:
    assert g711.ulaw_encode(ALL_SAMPLES) == g711.numpy_ulaw_encode(ALL_SAMPLES)
    assert g711.alaw_decode(ALL_CODES) == g711.numpy_alaw_decode(ALL_CODES)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_round_trip_error_is_within_the_companding_step(codec: str) -> None:
    t = np.arange(1600) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    back = np.frombuffer(g711.decoder(codec)(g711.encoder(codec)(tone.tobytes())), dtype="<i2")
    err = np.abs(back.astype(int) - tone.astype(int))
    assert err.max() <= 256 and err.mean() < 64


def test_silence_payload_decodes_to_near_zero() -> None:
    assert max(abs(x) for x in np.frombuffer(g711.alaw_decode(g711.silence_payload("PCMA")), "<i2")) == 8
    assert set(np.frombuffer(g711.ulaw_decode(g711.silence_payload("PCMU")), "<i2")) == {0}
