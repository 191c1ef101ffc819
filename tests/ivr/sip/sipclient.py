"""A tiny scripted SIP/RTP peer for UAS tests: raw datagrams, no code shared with the server side."""
from __future__ import annotations

import asyncio
import math
import random
import re
import struct

import numpy as np

from ivr.channel.base import CallerHungUp

OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio {port} RTP/AVP {fmts}\r\n{attrs}")


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        self.queue.put_nowait((data, addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def send(self, data: bytes | str, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data.encode() if isinstance(data, str) else data, addr)

    async def recv(self, timeout: float = 10.0) -> bytes:
        data, _ = await asyncio.wait_for(self.queue.get(), timeout)
        return data

    async def expect(self, pattern: str, timeout: float = 10.0) -> str:
        """Skip datagrams until one whose first line matches `pattern` (regex)."""
        while True:
            text = (await self.recv(timeout)).decode("utf-8", "replace")
            if re.match(pattern, text):
                return text

    def drain(self) -> list[bytes]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait()[0])
        return out


async def open_peer() -> Peer:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    return proto


def header(text: str, name: str) -> str:
    m = re.search(rf"^{name}:[ \t]*(.*?)\r$", text, re.MULTILINE | re.IGNORECASE)
    assert m, f"no {name} in {text!r}"
    return m.group(1)


class Dialog:
    """The caller's side of one call."""

    def __init__(self, sip: Peer, server: tuple[str, int], rtp_port: int = 0) -> None:
        self.sip = sip
        self.server = server
        self.call_id = f"{random.getrandbits(64):x}@test"
        self.from_tag = f"{random.getrandbits(32):x}"
        self.to_tag = ""
        self.cseq = 1
        self.rtp_port = rtp_port
        self.branch = ""

    def request(self, method: str, body: str = "", cseq: int | None = None, branch: str | None = None,
                extra: str = "") -> str:
        self.branch = branch or f"z9hG4bK{random.getrandbits(40):x}"
        to = "<sip:12345@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        n = self.cseq if cseq is None else cseq
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        return (f"{method} sip:12345@127.0.0.1:{self.server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip.port};branch={self.branch};rport\r\n"
                f"From: \"Caller\" <sip:13800138000@127.0.0.1>;tag={self.from_tag}\r\nTo: {to}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n"
                f"Contact: <sip:13800138000@127.0.0.1:{self.sip.port}>\r\n{extra}{ctype}"
                f"Content-Length: {len(body.encode())}\r\n\r\n{body}")

    def offer(self, fmts: str = "0 101", direction: str = "sendrecv", codec_lines: str = "") -> str:
        attrs = codec_lines or "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
        return OFFER.format(port=self.rtp_port, fmts=fmts, attrs=attrs + f"a={direction}\r\n")

    def invite(self, **kw: str) -> str:
        return self.request("INVITE", self.offer(**kw))

    def ack(self) -> str:
        return self.request("ACK", cseq=self.cseq)

    def send(self, text: str) -> None:
        self.sip.send(text, self.server)


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def ulaw_tone(freq: float, samples: int, start: int = 0, amp: float = 8000) -> bytes:
    """µ-law of a sine, encoded here independently of ivr.codecs (a plain G.711 formula, no tables)."""
    out = bytearray()
    for n in range(start, start + samples):
        x = int(amp * math.sin(2 * math.pi * freq * n / 8000))
        sign = 0x80 if x < 0 else 0
        mag = min(abs(x), 32635) + 0x84
        exp = max(mag.bit_length() - 8, 0)
        out.append(~(sign | (exp << 4) | ((mag >> (exp + 3)) & 0x0F)) & 0xFF)
    return bytes(out)


def dominant_freq(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * 8000 / len(x))


class ToneHandler:
    """The test call handler: plays a tone prompt, collects digits and audio, hangs up after `frames` (if set)."""

    def __init__(self, frames: int = 100, hang_up: bool = True, freq: float = 1000.0) -> None:
        self.frames = frames
        self.hang_up = hang_up
        t = np.arange(160 * frames) / 8000
        pcm = (6000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()
        self.prompt = [pcm[i : i + 320] for i in range(0, len(pcm), 320)]
        self.digits: list[str] = []
        self.audio: list[bytes] = []
        self.t_ms: list[int] = []
        self.channels: list = []
        self.caller_hung_up = 0
        self.done = asyncio.Event()

    async def __call__(self, channel) -> None:  # type: ignore[no-untyped-def]
        self.channels.append(channel)
        try:
            i = 0
            while self.frames <= 0 or i < self.frames or not self.hang_up:
                out = self.prompt[i] if i < len(self.prompt) else None
                inbound = await channel.exchange(out)
                self.audio.append(inbound.audio)
                self.t_ms.append(inbound.t_ms)
                self.digits.extend(inbound.digits)
                i += 1
            await channel.hangup()
        except CallerHungUp:
            self.caller_hung_up += 1
        finally:
            self.done.set()
