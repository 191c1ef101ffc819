"""The in-band detector against the receiver criteria, at their edges, and on real Mandarin speech."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from asr.audio import read_wav, write_wav
from ivr.commands.dtmf import app
from ivr.dtmf.inband import DBM0_AMPLITUDE, HIGH_TONES, KEYS, LOW_TONES, DtmfDetector, detect_digits

SPEECH = sorted(Path("/work/shared/audio/zh").glob("*.wav"))


def tone(key: str, ms: float, dbm_low: float = -6.0, dbm_high: float = -6.0, offset: float = 0.0) -> np.ndarray:
    row = next(i for i, r in enumerate(KEYS) if key in r)
    lo, hi = LOW_TONES[row], HIGH_TONES[KEYS[row].index(key)]
    n = np.arange(int(8 * ms))
    return (DBM0_AMPLITUDE * 10 ** (dbm_low / 20) * np.sin(2 * np.pi * lo * (1 + offset) * n / 8000)
            + DBM0_AMPLITUDE * 10 ** (dbm_high / 20) * np.sin(2 * np.pi * hi * (1 + offset) * n / 8000 + 0.7))


def pcm(*parts: np.ndarray, noise_snr_db: float | None = None, seed: int = 0) -> bytes:
    x = np.concatenate([np.zeros(800), *parts, np.zeros(800)])
    if noise_snr_db is not None:
        signal = np.mean(np.concatenate(parts) ** 2)
        x = x + np.random.default_rng(seed).normal(0, np.sqrt(signal / 10 ** (noise_snr_db / 10)), len(x))
    assert np.max(np.abs(x)) < 32767  # the edges are tested without clipping
    return np.round(x).astype("<i2").tobytes()


def keys(data: bytes) -> str:
    return "".join(d.digit for d in detect_digits(data))


def gap(ms: float) -> np.ndarray:
    return np.zeros(int(8 * ms))


def test_all_sixteen_keys() -> None:
    seq = "0123456789*#ABCD"
    parts = [p for k in seq for p in (tone(k, 60), gap(60))]
    assert keys(pcm(*parts)) == seq


@pytest.mark.parametrize("offset", [0.015, -0.015])
def test_accepts_frequency_error_of_1_5_percent(offset: float) -> None:
    assert keys(pcm(*[p for k in "1D*9" for p in (tone(k, 60, offset=offset), gap(60))])) == "1D*9"


@pytest.mark.parametrize("offset", [0.035, -0.035, 0.05])
def test_rejects_frequency_error_of_3_5_percent(offset: float) -> None:
    assert keys(pcm(*[p for k in "1D*9" for p in (tone(k, 60, offset=offset), gap(60))])) == ""


def test_accepts_40_ms_tones_with_40_ms_pauses() -> None:
    assert keys(pcm(*[p for k in "5551" for p in (tone(k, 40), gap(40))])) == "5551"


def test_rejects_tones_of_20_ms() -> None:
    assert keys(pcm(tone("5", 20), gap(100), tone("7", 20))) == ""


@pytest.mark.parametrize("level", [-3.0, -10.0, -25.0])
def test_levels_from_0_to_minus_25_dbm0(level: float) -> None:
    # -3 dBm0 per tone is a 0 dBm0 composite, the loudest that fits 16-bit PCM
    assert keys(pcm(tone("8", 60, level, level), gap(60), tone("3", 60, level, level))) == "83"


def test_rejects_tones_below_minus_33_dbm0() -> None:
    assert keys(pcm(tone("8", 80, -34, -34))) == ""


@pytest.mark.parametrize(("twist", "found"), [(-8.0, True), (4.0, True), (-11.0, False), (7.0, False)])
def test_twist(twist: float, found: bool) -> None:
    got = keys(pcm(tone("A", 60, -12, -12 + twist), gap(60), tone("*", 60, -12, -12 + twist)))
    assert got == ("A*" if found else "")


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_at_15_db_snr(seed: int) -> None:
    parts = [p for k in "2580" for p in (tone(k, 50, -15, -15), gap(50))]
    assert keys(pcm(*parts, noise_snr_db=15, seed=seed)) == "2580"


def test_streaming_in_20ms_frames_gives_the_same_keys_and_times() -> None:
    data = pcm(tone("4", 60), gap(100), tone("#", 60))
    det = DtmfDetector()
    streamed = [d for i in range(0, len(data), 320) for d in det.feed(data[i : i + 320])]
    assert streamed == detect_digits(data)
    assert [d.digit for d in streamed] == ["4", "#"]
    assert abs(streamed[0].t_ms - 100) <= 20 and abs(streamed[1].t_ms - 260) <= 20


@pytest.mark.skipif(not SPEECH, reason="no Mandarin speech in /work/shared/audio/zh")
def test_no_false_digits_on_mandarin_speech() -> None:
    total = 0
    for path in SPEECH:
        speech = read_wav(path)
        total += len(speech) // 16
        assert keys(speech) == "", path.name
    assert total > 30_000  # more than 30 s of speech was checked


@pytest.mark.skipif(not SPEECH, reason="no Mandarin speech in /work/shared/audio/zh")
def test_keys_pressed_over_speech_are_found() -> None:
    speech = np.frombuffer(read_wav(SPEECH[0]), "<i2").astype(float)[:16000]
    keyed = np.concatenate([speech[:8000], tone("7", 80, -6, -6), speech[8000:]])
    assert keys(np.clip(keyed, -32768, 32767).astype("<i2").tobytes()) == "7"


def test_cli_detect(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    write_wav(wav, pcm(tone("1", 60), gap(200), tone("2", 60)))
    result = CliRunner().invoke(app, ["detect", str(wav)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split("\t")[1] == "1" and lines[1].split("\t")[1] == "2"
    assert lines[-1] == "2 key(s): 12"
    missing = CliRunner().invoke(app, ["detect", str(tmp_path / "nope.wav")])
    assert missing.exit_code == 2


def test_no_false_digits_on_sipps_recorded_call_audio() -> None:
    from ivr.codecs.g711 import alaw_decode
    from ivr.rtp.packet import RtpPacket
    from ivr.rtp.pcap import read_udp

    capture = Path("/usr/share/sip-tester/g711a.pcap")
    if not capture.exists():
        pytest.skip("SIPp's sample capture is not installed (apt-get install sip-tester)")
    pcm = b"".join(alaw_decode(RtpPacket.parse(d.payload).payload) for d in read_udp(capture))
    assert len(pcm) > 100_000 and keys(pcm) == ""
