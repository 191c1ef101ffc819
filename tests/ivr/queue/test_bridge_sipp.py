"""The B2BUA for real: a SIPp caller (PCMA) calls our SipServer, which places a call to a SIPp operator (PCMU,
echoing RTP) and bridges the legs; recordings show the caller's speech and the operator's echo of it."""
from __future__ import annotations

import asyncio
import gc
import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.channel.base import Channel
from ivr.media.bridge import BridgeResult, bridge, recording_paths
from ivr.sip.endpoint import SipServerConfig
from ivr.sip.transaction import SipTimers
from ivr.sip.uac import OutboundChannel, place_call
from ivr.sip.uas import SipServer

HERE = Path(__file__).parent / "sipp"
pytestmark = [pytest.mark.sipp, pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")]


def pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)


def frame_rms(x: np.ndarray) -> np.ndarray:
    n = len(x) // 160
    return np.sqrt((x[: n * 160].reshape(n, 160) ** 2).mean(axis=1))


def echo_lag(caller: np.ndarray, operator: np.ndarray) -> tuple[int, float]:
    """The lag (samples) at which the operator track best matches the caller track, and the correlation there."""
    best = (0, -1.0)
    for lag in range(0, 4000, 8):  # up to 0.5 s
        a, b = caller[: len(caller) - lag], operator[lag:]
        n = min(len(a), len(b))
        if n < 8000:
            break
        corr = float(np.corrcoef(a[:n], b[:n])[0, 1])
        if corr > best[1]:
            best = (lag, corr)
    return best


def run_bridged_call(sipp, tmp_path: Path, caller_xml: str, operator_xml: str
                     ) -> tuple[BridgeResult, int, int, OutboundChannel]:
    """One call through the B2BUA; returns the bridge result, the exit codes of the caller and operator SIPp and
    the operator leg."""
    results: list[BridgeResult] = []
    legs: list[OutboundChannel] = []
    op_proc, op_port = sipp(["-sf", str(HERE / operator_xml), "-rtp_echo"], 1)

    async def main() -> tuple[int, int]:
        async def handler(channel: Channel) -> None:
            res = await place_call(f"sip:8001@127.0.0.1:{op_port}", ("127.0.0.1", op_port), ports=server.ports,
                                   clock=server.clock, t1=0.1)
            assert res.channel is not None
            legs.append(res.channel)
            results.append(await bridge(channel, res.channel, recording=tmp_path / "call.wav"))

        server = SipServer(SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=46400, rtp_port_max=46499,
                                           timers=SipTimers(t1=0.1, t2=0.4, t4=0.2)), handler)
        await server.start()
        await asyncio.sleep(0.3)  # the operator's sipp binding
        gc.collect()  # earlier tests' unreferenced connections must not close during the count
        fds = len(os.listdir("/proc/self/fd"))
        caller_proc, _ = sipp(["-sf", str(HERE / caller_xml), f"127.0.0.1:{server.port}"], 1)
        loop = asyncio.get_running_loop()
        caller_rc, op_rc = await asyncio.gather(loop.run_in_executor(None, caller_proc.wait),
                                                loop.run_in_executor(None, op_proc.wait))
        while any(server.resources().values()):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        gc.collect()
        assert server.ports.in_use == set() and len(os.listdir("/proc/self/fd")) == fds
        await server.stop()
        return caller_rc, op_rc

    caller_rc, op_rc = asyncio.run(main())
    assert len(results) == 1
    return results[0], caller_rc, op_rc, legs[0]


def test_caller_speech_reaches_the_operator_and_the_echo_comes_back_caller_hangs_up(sipp, tmp_path: Path) -> None:
    result, caller_rc, op_rc, _ = run_bridged_call(sipp, tmp_path, "caller_hangs_up.xml", "operator_echo.xml")
    assert (caller_rc, op_rc) == (0, 0)  # the operator got our BYE when the caller hung up
    assert result.ended_by == "caller"
    assert 3000 <= result.talk_ms <= 6000 and result.frames_relayed > 2 * 150
    caller_wav, operator_wav = recording_paths(tmp_path / "call.wav")
    caller, operator = pcm(caller_wav), pcm(operator_wav)
    assert abs(len(caller) - len(operator)) <= 160 * 5  # the two tracks stay aligned
    speech = frame_rms(caller) > 300
    assert speech.sum() > 100  # g711a.pcap's speech, decoded from PCMA, on the caller track
    assert frame_rms(operator)[speech].mean() > 0.5 * frame_rms(caller)[speech].mean()
    lag, corr = echo_lag(caller, operator)  # PCMA -> PCM -> PCMU -> SIPp echo -> PCMU -> PCM
    print(f"echo lag {lag / 8:.0f} ms, correlation {corr:.3f}; {result}")
    assert corr > 0.8, (lag, corr)
    assert 0 < lag < 8 * 200  # the echo is the caller's own speech, back within 200 ms


def test_operator_hangs_up_and_the_caller_gets_bye_keys_forwarded(sipp, tmp_path: Path) -> None:
    result, caller_rc, op_rc, operator_leg = run_bridged_call(sipp, tmp_path, "caller_until_bye.xml",
                                                              "operator_hangs_up.xml")
    assert (caller_rc, op_rc) == (0, 0)  # the caller got our BYE; the operator's OPTIONS and BYE were answered
    assert result.ended_by == "operator"
    assert 2500 <= result.talk_ms <= 5000
    # the caller's key 1 went to the operator as RFC 4733, came back in the operator's echo as one key press, and
    # was passed back to the caller: one key each way
    assert operator_leg.session.stats.dtmf_events == 1 and result.digits_forwarded == 2
    caller, operator = (pcm(p) for p in recording_paths(tmp_path / "call.wav"))
    assert (frame_rms(caller) > 300).sum() > 20 and (frame_rms(operator) > 300).sum() > 20
