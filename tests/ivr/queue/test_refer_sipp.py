"""Blind transfer by REFER on a call from SIPp: accepted (202 + NOTIFY sipfrag 200, then our BYE), declined (603),
accepted without a final NOTIFY (time-out)."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from ivr.channel.base import TransferResult
from ivr.channel.sip import SipChannel
from ivr.sip.endpoint import SipServerConfig
from ivr.sip.refer import sipfrag_status
from ivr.sip.transaction import SipTimers
from ivr.sip.uas import SipServer

HERE = Path(__file__).parent / "sipp"
pytestmark = [pytest.mark.sipp, pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")]
TARGET = "sip:8001@10.0.0.5"


def test_sipfrag_status() -> None:
    assert sipfrag_status(b"SIP/2.0 200 OK\r\n") == 200
    assert sipfrag_status(b"SIP/2.0 180 Ringing") == 180
    assert sipfrag_status(b"INVITE sip:x SIP/2.0") is None


def transfer(sipp, tmp_path: Path, scenario: str, timeout_s: float = 10.0) -> tuple[TransferResult, int, str]:
    results: list[TransferResult] = []

    async def main() -> tuple[int, list[str]]:
        async def handler(channel: SipChannel) -> None:
            results.append(await channel.refer(TARGET, timeout_s=timeout_s))

        server = SipServer(SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=46500, rtp_port_max=46599,
                                           timers=SipTimers(t1=0.1, t2=0.4, t4=0.2)), handler)
        await server.start()
        proc, port = sipp(["-sf", str(HERE / scenario), f"127.0.0.1:{server.port}"], 1)
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait)
        while any(server.resources().values()):
            await asyncio.sleep(0.05)
        assert server.referrals == {}
        reasons = [r for _, r in server.ended_calls]
        await server.stop()
        return rc, reasons

    rc, reasons = asyncio.run(main())
    assert len(results) == 1 and len(reasons) == 1
    return results[0], rc, reasons[0]


def test_refer_accepted_then_the_caller_leg_is_ended(sipp, tmp_path: Path) -> None:
    result, rc, reason = transfer(sipp, tmp_path, "refer_accepted.xml")
    assert result == TransferResult(ok=True, target=TARGET, accepted=True)
    assert rc == 0  # SIPp got the REFER, its NOTIFY was answered 200, then our BYE
    assert reason == "transferred by REFER"
    log = next(tmp_path.glob("msgs*.log")).read_text()
    refer = log[log.index("REFER sip:13800138000@"):]
    assert f"Refer-To: <{TARGET}>" in refer and "Referred-By: <sip:ivr@127.0.0.1:" in refer


def test_refer_declined(sipp, tmp_path: Path) -> None:
    result, rc, reason = transfer(sipp, tmp_path, "refer_declined.xml")
    assert result == TransferResult(ok=False, target=TARGET, reason="REFER refused with 603")
    assert rc == 0 and reason == "handler finished"  # the IVR still holds the call and ends it itself


def test_refer_accepted_without_final_notify_times_out(sipp, tmp_path: Path) -> None:
    scenario = tmp_path / "refer_silent.xml"  # the phone accepts (202) and then reports nothing
    text = (HERE / "refer_declined.xml").read_text()
    scenario.write_text(text.replace("603 Declined", "202 Accepted"))
    result, rc, _ = transfer(sipp, tmp_path, str(scenario), timeout_s=1.0)
    assert result == TransferResult(ok=False, target=TARGET, reason="no NOTIFY with a final status within 1 s",
                                    accepted=True)  # the phone took it: the target failed
    assert rc == 0
