"""Faults a PBX must take in its stride, driven by SIPp over loopback: calls torn down during set-up, nonsense
connection addresses, SDP with leading whitespace, merged and tagless repeated INVITEs."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sipclient import ToneHandler
from sippkit import PCMU_EVENTS, SIPP, finish, pause, recv, request, run_sipp, scenario, sdp, start

from ivr.sip.protection import ProtectionConfig

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

#: SIPp sends faster than the shipped per-source INVITE limit; these tests are about what happens after it
UNLIMITED = ProtectionConfig(invite_rate=10000.0, invite_burst=10000)


def logged(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    """Every record at `level` or above, with its traceback."""
    fmt = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return [fmt.format(r) for r in caplog.records if r.levelno >= level]


def test_invite_cancelled_at_once_leaves_no_bad_file_descriptor(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A CANCEL right behind the INVITE ends the call while its RTP endpoint is being created (PROTOS runs do this
    for every case): the socket must not be closed under the transport being made."""
    caplog.set_level(logging.INFO)

    async def main() -> None:
        server = await start(ToneHandler(), ring_seconds=30, protection=UNLIMITED)
        invite = request("INVITE", 1, sdp(*PCMU_EVENTS).replace("{v}", "1"), retrans=False)
        cancel = request("CANCEL", 1, retrans=False).replace("[branch]", "[branch-1]")
        ack = request("ACK", 1, in_dialog=True, retrans=False).replace("[branch]", "[branch-6]")  # the INVITE's
        xml = scenario("cancel-at-once", invite, cancel, recv(100, optional=True), recv(180, optional=True),
                       recv(200), recv(487), ack, pause(100))
        rc, out = await run_sipp(xml, tmp_path, server.port, calls=120, rate=200, limit=30,
                                 extra=["-default_behaviors", "pingreply"])  # the 100 may cross the CANCEL
        assert rc == 0, out
        assert len(server.ended_calls) == 120
        assert {reason for _, reason in server.ended_calls} == {"caller cancelled"}
        assert not any((await finish(server)).values())

    asyncio.run(main())
    assert [line for line in logged(caplog) if "Bad file descriptor" in line or "Errno" in line] == []
    assert logged(caplog, logging.ERROR) == []
