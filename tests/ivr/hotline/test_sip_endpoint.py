"""`ivr serve` plumbing (run_server with the demo handler, drain on stop) and the front-door protection over UDP."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest
from sipclient import Dialog, ToneHandler, header, open_peer
from sippkit import SIPP, answer_ok, invite_answered, pause, recv, run_sipp, scenario

from ivr.config import Settings
from ivr.hotline.sip_endpoint import demo_handler, run_server, server_config
from ivr.sip.endpoint import SipServerConfig
from ivr.sip.protection import ProtectionConfig
from ivr.sip.transaction import SipTimers
from ivr.sip.uas import SipServer


@pytest.mark.sipp
@pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")
def test_run_server_with_demo_handler_hangs_up_on_pound(tmp_path: Path) -> None:
    async def main() -> None:
        settings = Settings(data_dir=tmp_path, sip_host="127.0.0.1", sip_port=0, rtp_port_min=44000,
                            rtp_port_max=44999)
        cfg = server_config(settings)
        stop = asyncio.Event()
        started: list[SipServer] = []
        task = asyncio.create_task(run_server(cfg, demo_handler, stop, drain_seconds=1, ready=started.append))
        while not started:
            await asyncio.sleep(0.01)
        xml = scenario("demo", invite_answered(), pause(300),
                       '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_pound.pcap"/></action></nop>\n',
                       recv("BYE"), answer_ok(), pause(100))
        rc, out = await run_sipp(xml, tmp_path, started[0].port)
        assert rc == 0, out
        assert started[0].ended_calls[-1][1] == "IVR hung up"
        stop.set()
        server = await task
        assert not any(server.resources().values()), server.resources()

    asyncio.run(main())


def test_stop_drains_then_hangs_up_calls_in_progress() -> None:
    async def main() -> None:
        cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=44000, rtp_port_max=44999,
                              timers=SipTimers(t1=0.02, t2=0.16, t4=0.05))
        stop = asyncio.Event()
        started: list[SipServer] = []
        task = asyncio.create_task(run_server(cfg, ToneHandler(frames=0, hang_up=False), stop, drain_seconds=0.5,
                                              ready=started.append))
        while not started:
            await asyncio.sleep(0.01)
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", started[0].port), rtp_port=(await open_peer()).port)
        d.send(d.invite())
        ok = await sip.expect(r"SIP/2.0 200")
        d.to_tag = header(ok, "To").split("tag=")[1]
        d.send(d.ack())
        stop.set()
        await asyncio.sleep(0.1)
        d2 = Dialog(sip, d.server, rtp_port=5000)
        d2.send(d2.invite())  # new calls are refused while draining
        assert (await sip.expect(r"SIP/2.0 5")).startswith("SIP/2.0 503")
        bye = await sip.expect(r"BYE ")
        assert header(bye, "Call-ID") == d.call_id
        server = await task
        assert server.ended_calls[-1] == (d.call_id, "server stopping")

    asyncio.run(main())


def test_second_ctrl_c_hangs_up_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.hotline.sip_endpoint")

    async def main() -> None:
        cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=44000, rtp_port_max=44999,
                              timers=SipTimers(t1=0.02, t2=0.16, t4=0.05))
        started: list[SipServer] = []
        task = asyncio.create_task(run_server(cfg, ToneHandler(frames=0, hang_up=False), drain_seconds=3600,
                                              ready=started.append))
        while not started:
            await asyncio.sleep(0.01)
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", started[0].port), rtp_port=(await open_peer()).port)
        d.send(d.invite())
        ok = await sip.expect(r"SIP/2.0 200")
        d.to_tag = header(ok, "To").split("tag=")[1]
        d.send(d.ack())
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: draining for up to an hour
        while not started[0].draining:
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # and again
        bye = await sip.expect(r"BYE ")
        assert header(bye, "Call-ID") == d.call_id
        server = await task
        assert server.ended_calls[-1] == (d.call_id, "server stopping")

    asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert "stop signal again: hanging up now" in messages
    assert "stopped: 1 call(s) and 0 outbound leg(s) cut" in messages


def test_protection_over_udp() -> None:
    async def main() -> None:
        cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=44000, rtp_port_max=44999,
                              timers=SipTimers(t1=0.02, t2=0.16, t4=0.05),
                              protection=ProtectionConfig(max_message_bytes=1500, invite_rate=0.001, invite_burst=2,
                                                          max_calls_per_source=1))
        server = SipServer(cfg, ToneHandler(frames=0, hang_up=False))
        await server.start()
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        d.send(d.request("OPTIONS", extra="User-Agent: friendly-scanner\r\n"))
        d.send(d.request("OPTIONS", extra="X-Pad: " + "x" * 2000 + "\r\n"))
        d.send(b"\x00\xff garbage \r\n\r\n")
        d.send(b"\r\n\r\n")  # keep-alive
        d.send(d.request("OPTIONS", extra="User-Agent: Asterisk PBX\r\n"))
        first = await sip.expect(r"SIP/2.0 ")
        assert first.startswith("SIP/2.0 200") and header(first, "CSeq") == "1 OPTIONS"
        assert sip.drain() == []  # scanner, oversize and garbage got no answer at all
        assert server.counters["dropped"] == 3
        # one call per source: the second concurrent INVITE is refused; then the rate limit bites
        await_ok = Dialog(sip, d.server, rtp_port=5000)
        await_ok.send(await_ok.invite())
        ok = await sip.expect(r"SIP/2.0 200")
        await_ok.to_tag = header(ok, "To").split("tag=")[1]
        await_ok.send(await_ok.ack())
        second = Dialog(sip, d.server, rtp_port=5000)
        second.send(second.invite())
        assert (await sip.expect(r"SIP/2.0 5")).startswith("SIP/2.0 503")
        await_ok.cseq += 1
        await_ok.send(await_ok.request("BYE"))
        await sip.expect(r"SIP/2.0 200")
        third = Dialog(sip, d.server, rtp_port=5000)
        third.send(third.invite())
        busy = await sip.expect(r"SIP/2.0 5")
        assert busy.startswith("SIP/2.0 503") and header(busy, "Retry-After") == "10"
        assert server.counters.get("internal_errors", 0) == 0
        await server.stop()

    asyncio.run(main())


def test_server_config_takes_the_front_door_limits_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sip_allow=("10.0.0.0/24",), sip_trusted=("10.0.0.1",), sip_invite_rate=5,
                        sip_invite_burst=10, sip_trusted_invite_rate=300, sip_global_invite_rate=250,
                        sip_global_invite_burst=500, sip_max_calls_per_source=3, rtp_timeout_s=20)
    cfg = server_config(settings)
    assert cfg.protection == ProtectionConfig(
        allow_sources=("10.0.0.0/24",), trusted_sources=("10.0.0.1",), invite_rate=5, invite_burst=10,
        trusted_invite_rate=300, trusted_invite_burst=200, global_invite_rate=250, global_invite_burst=500,
        max_calls_per_source=3)
    assert cfg.rtp_timeout == 20
