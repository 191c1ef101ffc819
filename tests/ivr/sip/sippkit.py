"""SIPp scenarios for the UAS tests and benchmarks, and a runner (SIPp is the Debian package sip-tester)."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipclient import rtp

from asr.audio import FRAME_BYTES
from ivr.codecs.g711 import ulaw_encode
from ivr.rtp.pcap import UdpDatagram, write_udp
from ivr.sip.endpoint import CallHandler, SipServerConfig
from ivr.sip.transaction import SipTimers
from ivr.sip.uas import SipServer

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.hotline.queueing import QueueOptions

SIPP = shutil.which("sipp")
#: SIPp's sample captures (G.711 A-law audio, RFC 2833 keys with payload type 101)
SHARE = Path("/usr/share/sip-tester")

#: short SIP timers so that transactions linger briefly in tests
TIMERS = SipTimers(t1=0.05, t2=0.4, t4=0.1)

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
"""
COMMON = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: caller <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: hotline <sip:12345@[remote_ip]:[remote_port]>{peer}
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:13800138000@[local_ip]:[local_port]>
      Max-Forwards: 70
      User-Agent: SIPp test caller"""


def sdp(formats: str, rtpmaps: str, direction: str = "sendrecv") -> str:
    return ("\n      v=0\n      o=- 1 {v} IN IP[local_ip_type] [local_ip]\n      s=-\n"
            "      c=IN IP[media_ip_type] [media_ip]\n      t=0 0\n"
            f"      m=audio [media_port] RTP/AVP {formats}\n{rtpmaps}      a={direction}\n")


def rtpmaps(*lines: str) -> str:
    return "".join(f"      a={x}\n" for x in lines)


PCMU_EVENTS = ("0 101", rtpmaps("rtpmap:0 PCMU/8000", "rtpmap:101 telephone-event/8000", "fmtp:101 0-15"))
PCMU_ONLY = ("0", rtpmaps("rtpmap:0 PCMU/8000"))
PCMA_ONLY = ("8", rtpmaps("rtpmap:8 PCMA/8000"))


def request(method: str, cseq: int, body: str = "", in_dialog: bool = False, retrans: bool = True,
            start_rtd: bool = False, extra: str = "", routed: bool = False) -> str:
    """A request of the caller's; `routed` in-dialog requests go to the answer's Contact along its Record-Route
    (a proxy in between, such as Kamailio; the 200 must be received with `rrs`)."""
    routed = routed and in_dialog
    headers = COMMON.format(peer="[peer_tag_param]" if in_dialog else "", cseq=cseq, method=method)
    if routed:
        headers += "\n      [routes]"
    if extra:
        headers += "\n      " + extra
    ctype = "\n      Content-Type: application/sdp" if body else ""
    uri = "[next_url]" if routed else "sip:12345@[remote_ip]:[remote_port]"
    attrs = (' retrans="500"' if retrans else "") + (' start_rtd="true"' if start_rtd else "")
    return (f"  <send{attrs}>\n    <![CDATA[\n\n      {method} {uri} SIP/2.0\n      {headers}{ctype}\n"
            f"      Content-Length: [len]\n{body}\n    ]]>\n  </send>\n")


def recv(status: int | str, optional: bool = False, rtd: bool = False, rrs: bool = False) -> str:
    """Expect a response (status code) or a request (method); `rrs` keeps its Record-Route and Contact for routed
    requests."""
    attrs = (' optional="true"' if optional else "") + (' rtd="true"' if rtd else "") + (' rrs="true"' if rrs else "")
    kind = "response" if isinstance(status, int) else "request"
    return f'  <recv {kind}="{status}"{attrs}/>\n'


def answer_ok() -> str:
    """Answer the request just received (a BYE from the IVR) with 200."""
    return answer("200 OK")


def answer(status: str) -> str:
    """Answer the request just received (e.g. a REFER from the IVR) with `status` ("202 Accepted")."""
    return (f"  <send>\n    <![CDATA[\n\n      SIP/2.0 {status}\n      [last_Via:]\n      [last_From:]\n"
            "      [last_To:]\n      [last_Call-ID:]\n      [last_CSeq:]\n      Content-Length: 0\n\n    ]]>\n"
            "  </send>\n")


def notify_refer(cseq: int, frag: str = "SIP/2.0 200 OK") -> str:
    """The caller's phone reports how the call to a REFER's target went (RFC 3515 NOTIFY, message/sipfrag)."""
    return request("NOTIFY", cseq, f"\n      {frag}\n", in_dialog=True,
                   extra="Event: refer\n      Subscription-State: terminated;reason=noresource"
                   ).replace("application/sdp", "message/sipfrag")


def play(pcap: str | Path, pause_ms: int) -> str:
    return (f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
            f'  <pause milliseconds="{pause_ms}"/>\n')


def pcmu_pcap(path: Path, pcm: bytes) -> Path:
    """The caller's speech as a 20 ms PCMU RTP stream, for SIPp's play_pcap_audio."""
    items = []
    for k, i in enumerate(range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)):
        pkt = rtp(0, 100 + k, 8000 + 160 * k, 0xCA11E5, ulaw_encode(pcm[i : i + FRAME_BYTES]), marker=k == 0)
        items.append(UdpDatagram(1000.0 + 0.02 * k, ("10.0.0.1", 6000), ("10.0.0.2", 7000), pkt))
    write_udp(path, items)
    return path


def pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def invite_answered(offer: tuple[str, str] = PCMU_EVENTS, cseq: int = 1, routed: bool = False) -> str:
    return (request("INVITE", cseq, sdp(*offer).replace("{v}", "1"), start_rtd=True) + recv(100, optional=True)
            + recv(180, optional=True) + recv(200, rtd=True, rrs=routed)
            + request("ACK", cseq, in_dialog=True, retrans=False, routed=routed))


def caller_bye(cseq: int, routed: bool = False) -> str:
    return request("BYE", cseq, in_dialog=True, routed=routed) + recv(200)


def answered_or_refused(routed: bool = False, retry_after: bool = False) -> str:
    """A call answered (then hung up) or refused with 503 (logged as "refused CALL-ID" with -trace_logs, and ACKed
    hop by hop); with `retry_after` a 503 without Retry-After fails the call."""
    check = ('<ereg regexp="[0-9]+" search_in="hdr" header="Retry-After:" check_it="true" assign_to="1"/>'
             if retry_after else "")
    after = " retry-after [$1]" if retry_after else ""
    rrs = ' rrs="true"' if routed else ""
    return scenario(
        "answered or refused",
        request("INVITE", 1, sdp(*PCMU_ONLY).replace("{v}", "1")),
        recv(100, optional=True),
        f'  <recv response="200" optional="true" next="1"{rrs}/>\n',
        f'  <recv response="503">\n    <action>{check}<log message="refused [call_id]{after}"/></action>\n  </recv>\n',
        "  <send>\n    <![CDATA[\n\n      ACK sip:12345@[remote_ip]:[remote_port] SIP/2.0\n      [last_Via:]\n"
        "      [last_From:]\n      [last_To:]\n      [last_Call-ID:]\n      CSeq: 1 ACK\n      Max-Forwards: 70\n"
        "      Content-Length: 0\n\n    ]]>\n  </send>\n",
        '  <nop next="2"/>\n',
        '  <label id="1"/>\n',
        request("ACK", 1, in_dialog=True, retrans=False, routed=routed),
        caller_bye(2, routed=routed),
        '  <label id="2"/>\n')


def scenario(name: str, *steps: str) -> str:
    return HEAD.format(name=name) + "".join(steps) + "</scenario>\n"


# A SIPp phone binds its media port (-mp) and the one 2 above it. Phones take blocks of 4 from one counter above the
# kernel's ephemeral ports (32768-60999) and the nodes' RTP ranges, so no two phones, no port a test asked the kernel
# for, and no node's RTP socket ever take each other's (a phone that cannot bind never starts: an operator who does
# not answer, a caller who never calls).
_MEDIA_BLOCKS = itertools.count()


def sipp_media_port() -> int:
    """The -mp of the next SIPp phone of this test run (its blocks wrap after 1,100 phones, long gone by then)."""
    return 61000 + next(_MEDIA_BLOCKS) % 1100 * 4


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sipp_counts(out: str) -> tuple[int, int]:
    """(successful, failed) calls from SIPp's final statistics in `out` (-1 when absent)."""
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return (int(ok[-1]) if ok else -1, int(failed[-1]) if failed else -1)


async def run_sipp(xml: str, workdir: Path, server_port: int, calls: int = 1, rate: float = 1.0,
                   limit: int | None = None, extra: list[str] | None = None,
                   timeout_s: int = 120, nice: int = 0, local_ip: str = "127.0.0.1",
                   server_host: str = "127.0.0.1") -> tuple[int, str]:
    """Run SIPp from `local_ip` (any 127.x address is loopback) against server_host:server_port; returns (exit code,
    output). Exit code 0 = every call passed."""
    assert SIPP is not None
    path = workdir / "scenario.xml"
    path.write_text(xml, encoding="iso-8859-1")
    args = [SIPP, "-sf", str(path), f"{server_host}:{server_port}", "-i", local_ip, "-p", str(free_udp_port()),
            "-mi", local_ip, "-mp", str(sipp_media_port()), "-m", str(calls), "-r", str(rate),
            "-l", str(limit or calls), "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error", "-trace_err",
            "-error_file", str(workdir / "errors.log"), "-max_recv_loops", "1000", *(extra or [])]
    if nice:  # let the load generator yield to the server under test
        args = ["nice", "-n", str(nice), *args]
    proc = await asyncio.create_subprocess_exec(*args, cwd=workdir, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    errors = (workdir / "errors.log").read_text(errors="replace") if (workdir / "errors.log").exists() else ""
    return proc.returncode or 0, out.decode(errors="replace")[-3000:] + errors[-3000:]


async def start(handler: CallHandler, rtp_ports: tuple[int, int] = (42000, 42999), timers: SipTimers = TIMERS,
                **kw: Any) -> SipServer:
    """A UAS on a free loopback port for SIPp (or a test's own peer) to call."""
    cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=rtp_ports[0], rtp_port_max=rtp_ports[1],
                          timers=timers, **kw)
    server = SipServer(cfg, handler)
    await server.start()
    return server


async def finish(server: SipServer) -> dict[str, int]:
    """Wait until the server holds nothing (transactions linger 64*T1), stop it; returns what it still held."""
    for _ in range(400):
        if not any(server.resources().values()):
            break
        await asyncio.sleep(0.05)
    res = server.resources()
    await server.stop()
    return res


@contextlib.asynccontextmanager
async def serving(settings: Settings, queue: QueueOptions | None = None) -> AsyncIterator[SipServer]:
    """`ivr serve`'s production path (serve_hotline, no console) with the queue `queue` (None: from the settings);
    yields its SIP server once it listens, and drains and stops it on leaving."""
    from ivr.hotline.server import serve_hotline
    from ivr.hotline.sip_endpoint import server_config

    stop = asyncio.Event()
    servers: list[SipServer] = []
    task = asyncio.create_task(serve_hotline(settings, server_config(settings), console=False, stop=stop,
                                             drain_seconds=5, ready=servers.append, queue=queue))
    while not servers:
        await asyncio.sleep(0.05)
        if task.done():
            task.result()  # it failed to start: raise why
    try:
        yield servers[0]
    finally:
        stop.set()
        await task
