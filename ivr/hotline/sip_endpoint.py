"""The SIP endpoint as a server runs it: its settings, serving until a stop signal, draining the calls in progress.

Ctrl-C (SIGINT) or SIGTERM stops taking calls (503) and lets the calls in progress (inbound, and the outbound legs of
bridges and callbacks) go on for up to the drain time, then hangs up the rest and closes; a second Ctrl-C hangs up
at once. `demo_handler` answers with a beep and logs the keys (a line check without the flow).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Callable

import numpy as np

from asr.audio import FRAME_BYTES
from ivr.channel.base import CallerHungUp
from ivr.channel.sip import SipChannel
from ivr.config import ConfigError, Settings
from ivr.dtmf.inband import InbandDigits
from ivr.logs import mask_number
from ivr.sip.endpoint import CallHandler, SipServerConfig
from ivr.sip.protection import ProtectionConfig
from ivr.sip.uac import OutboundCalls
from ivr.sip.uas import SipServer

__all__ = ["server_config", "run_server", "drain", "demo_handler"]

logger = logging.getLogger(__name__)


async def demo_handler(channel: SipChannel) -> None:
    """Beep, then log the keys pressed (RFC 4733 or in-band) until `#`, the caller hangs up, or 60 s."""
    t = np.arange(8 * 400) / 8000
    beep = (8000 * np.sin(2 * np.pi * 880 * t)).astype("<i2").tobytes()
    frames = [beep[i : i + FRAME_BYTES] for i in range(0, len(beep), FRAME_BYTES)]
    detector = InbandDigits() if channel.inband_dtmf else None
    keys: list[str] = []
    try:
        for i in range(3000):
            inbound = await channel.exchange(frames[i] if i < len(frames) else None)
            digits = list(inbound.digits)
            if detector is not None:
                digits += detector.process(inbound.audio)
            for digit in digits:
                keys.append(digit)
                logger.info("call %s: key %s", channel.info.call_id, digit)
            if "#" in digits:
                break
        await channel.hangup()
    except CallerHungUp:
        pass
    logger.info("call %s from %s: keys %s", channel.info.call_id, mask_number(channel.info.caller), "".join(keys))


def server_config(settings: Settings, ring_seconds: float = 0.0, advertised_host: str | None = None) -> SipServerConfig:
    """The SIP server's configuration from the settings: addresses, RTP ports and time-out, call and INVITE limits."""
    s = settings
    protection = ProtectionConfig(
        allow_sources=s.sip_allow, trusted_sources=s.sip_trusted, invite_rate=s.sip_invite_rate,
        invite_burst=s.sip_invite_burst, trusted_invite_rate=s.sip_trusted_invite_rate,
        trusted_invite_burst=s.sip_trusted_invite_burst, global_invite_rate=s.sip_global_invite_rate,
        global_invite_burst=s.sip_global_invite_burst, max_calls_per_source=s.sip_max_calls_per_source)
    return SipServerConfig(host=s.sip_host, port=s.sip_port, advertised_host=advertised_host,
                           rtp_port_min=s.rtp_port_min, rtp_port_max=s.rtp_port_max, max_calls=s.max_calls,
                           ring_seconds=ring_seconds, rtp_timeout=s.rtp_timeout_s, protection=protection)


async def run_server(config: SipServerConfig, handler: CallHandler, stop: asyncio.Event | None = None,
                     drain_seconds: float = 30.0, ready: Callable[[SipServer], None] | None = None, *,
                     outbound: OutboundCalls | None = None,
                     on_stopping: Callable[[], None] | None = None) -> SipServer:
    """Serve until `stop` is set (SIGINT/SIGTERM set it), then call `on_stopping` and `drain` the calls in progress,
    inbound and `outbound`; a second SIGINT/SIGTERM hangs them up at once. Returns the stopped server."""
    stop = stop or asyncio.Event()
    cut_now = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set() and not cut_now.is_set():
            logger.warning("stop signal again: hanging up now")
            cut_now.set()
        stop.set()

    server = SipServer(config, handler)
    try:
        await server.start()
    except OSError as exc:
        key = "sip_port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "sip_host"
        raise ConfigError(f"{key}: cannot listen on {config.host}:{config.port} "
                          f"({exc.strerror or exc})") from None
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
        if on_stopping is not None:
            on_stopping()
        await drain(server, drain_seconds, outbound or OutboundCalls(), cut_now)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return server


async def drain(server: SipServer, seconds: float, outbound: OutboundCalls, cut_now: asyncio.Event) -> None:
    """Refuse new calls (503) and let the calls in progress, inbound and outbound, go on for up to `seconds` (until
    `cut_now`); then hang up the rest (BYE; CANCEL what rings) and close."""
    server.draining = True
    logger.info("stopping: %d call(s) and %d outbound leg(s) in progress, draining for up to %.0f s (Ctrl-C again "
                "hangs up now)", len(server.calls), len(outbound), seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (server.calls or outbound) and loop.time() < start + seconds and not cut_now.is_set():
        await asyncio.sleep(0.05)
    calls, legs = len(server.calls), len(outbound)
    if calls or legs:
        logger.warning("hanging up %d call(s) and %d outbound leg(s) still in progress after %.0f s of draining",
                       calls, legs, loop.time() - start)
    cutting = asyncio.ensure_future(outbound.hang_up_all())
    await server.stop()
    await cutting
    logger.info("stopped: %d call(s) and %d outbound leg(s) cut", calls, legs)
