"""`ivr serve`: run the SIP endpoint and hand every answered call to a call handler.

The handler comes from a factory, `handler_factory(settings) -> async handler(channel)`. The shipped flow runner
is plugged in with `set_handler_factory()` (or by passing `handler=` to `run_server`); until then a small demo
handler answers with a beep, logs the keys pressed and hangs up on `#`. Ctrl-C (SIGINT) or SIGTERM stops taking
calls (503) and lets the calls in progress finish for up to `--drain` seconds before hanging them up.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import typer

from asr.audio import FRAME_BYTES
from ivr.channel import CallerHungUp
from ivr.channel_sip import SipChannel
from ivr.config import ConfigError, Settings, load_settings
from ivr.dtmf.inband import DtmfDetector
from ivr.sip.protection import ProtectionConfig
from ivr.sip.uas import CallHandler, SipServer, SipServerConfig, mask_number

__all__ = ["app", "HandlerFactory", "set_handler_factory", "server_config", "run_server", "demo_handler"]

logger = logging.getLogger(__name__)

HandlerFactory = Callable[[Settings], CallHandler]

app = typer.Typer(help="Run the SIP/RTP endpoint that answers hotline calls.")


async def demo_handler(channel: SipChannel) -> None:
    """Beep, then log the keys pressed (RFC 4733 or in-band) until `#`, the caller hangs up, or 60 s."""
    t = np.arange(8 * 400) / 8000
    beep = (8000 * np.sin(2 * np.pi * 880 * t)).astype("<i2").tobytes()
    frames = [beep[i : i + FRAME_BYTES] for i in range(0, len(beep), FRAME_BYTES)]
    detector = DtmfDetector() if channel.inband_dtmf else None
    keys: list[str] = []
    try:
        for i in range(3000):
            inbound = await channel.exchange(frames[i] if i < len(frames) else None)
            digits = list(inbound.digits)
            if detector is not None:
                digits += [d.digit for d in detector.feed(inbound.audio)]
            for digit in digits:
                keys.append(digit)
                logger.info("call %s: key %s", channel.info.call_id, digit)
            if "#" in digits:
                break
        await channel.hangup()
    except CallerHungUp:
        pass
    logger.info("call %s from %s: keys %s", channel.info.call_id, mask_number(channel.info.caller), "".join(keys))


def _demo_factory(settings: Settings) -> CallHandler:
    return demo_handler


_factory: HandlerFactory = _demo_factory


def set_handler_factory(factory: HandlerFactory) -> None:
    """Make `ivr serve` run calls with `factory(settings)` (the lead's flow runner)."""
    global _factory
    _factory = factory


def server_config(settings: Settings, allow: tuple[str, ...] = (), ring_seconds: float = 0.0,
                  max_calls_per_source: int = 0, advertised_host: str | None = None) -> SipServerConfig:
    return SipServerConfig(
        host=settings.sip_host, port=settings.sip_port, advertised_host=advertised_host,
        rtp_port_min=settings.rtp_port_min, rtp_port_max=settings.rtp_port_max, max_calls=settings.max_calls,
        ring_seconds=ring_seconds,
        protection=ProtectionConfig(allow_sources=allow, max_calls_per_source=max_calls_per_source),
    )


async def run_server(config: SipServerConfig, handler: CallHandler, stop: asyncio.Event | None = None,
                     drain_seconds: float = 30.0, ready: Callable[[SipServer], None] | None = None) -> SipServer:
    """Serve until `stop` is set (or SIGINT/SIGTERM), then drain and close. Returns the stopped server."""
    stop = stop or asyncio.Event()
    server = SipServer(config, handler)
    await server.start()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
        logger.info("stopping: %d call(s) in progress, draining for up to %.0f s", len(server.calls), drain_seconds)
        await server.stop(drain_seconds)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return server


@app.callback(invoke_without_command=True)
def serve(
    config: Path | None = typer.Option(None, "--config", help="settings file (TOML)"),
    host: str | None = typer.Option(None, help="SIP listen address"),
    port: int | None = typer.Option(None, help="SIP UDP port"),
    allow: list[str] = typer.Option([], "--allow", help="trunk allow-list: address or CIDR (repeatable)"),
    advertise: str | None = typer.Option(None, help="address to put in SDP/Contact (default: route to caller)"),
    ring_seconds: float = typer.Option(0.0, help="ring this long (180) before answering"),
    max_calls_per_source: int = typer.Option(0, help="concurrent calls allowed per source address (0 = no cap)"),
    drain: float = typer.Option(30.0, help="seconds to let calls finish on Ctrl-C"),
) -> None:
    """Answer SIP calls over UDP and run the call flow on each."""
    try:
        settings = load_settings(config, overrides={"sip_host": host, "sip_port": port})
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = server_config(settings, tuple(allow), ring_seconds, max_calls_per_source, advertise)
    try:
        asyncio.run(run_server(cfg, _factory(settings), drain_seconds=drain))
    except OSError as exc:
        typer.echo(f"error: cannot listen on {cfg.host}:{cfg.port} ({exc})", err=True)
        raise typer.Exit(1) from None
