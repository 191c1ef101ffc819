"""`ivr serve`: answer SIP calls, run the call flow on each, and serve the operator console beside it.

`serve_hotline()` is the production path (HotlineService.handle_call on every call); `run_server()` takes any
handler, and `--demo` answers with a beep and logs the keys (a line check without the flow). Ctrl-C (SIGINT) or
SIGTERM stops taking calls (503) and stops the queue, lets the calls in progress (inbound, and the outbound legs
of bridges and callbacks) go on for up to `--drain` seconds, then hangs up the rest and exits; a second Ctrl-C
hangs up at once. Before taking calls, the recordings this node (`node_id`) was making when it last stopped are
repaired and queued for transcription.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import typer
from sqlalchemy.exc import SQLAlchemyError

from asr.audio import FRAME_BYTES
from ivr.channel import CallerHungUp
from ivr.channel_sip import SipChannel
from ivr.config import ConfigError, Settings
from ivr.dtmf.inband import DtmfDetector
from ivr.queue.hotline import QueueOptions
from ivr.sip.protection import ProtectionConfig
from ivr.sip.uac import OutboundCalls
from ivr.sip.uas import CallHandler, SipServer, SipServerConfig, mask_number
from ivr.storage import problem
from ivr.tickets.recovery import recover_interrupted
from ivr.tickets.store import TicketStore

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["app", "server_config", "run_server", "serve_hotline", "recover_recordings", "demo_handler",
           "ConsoleThread"]

logger = logging.getLogger(__name__)

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


def console_socket(settings: Settings) -> socket.socket:
    """The console's listening socket, bound before the server starts: a port in use is a ConfigError."""
    host, port = settings.console_host, settings.console_port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        key = "console_port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "console_host"
        raise ConfigError(f"{key}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


class ConsoleThread:
    """The operator console on a thread of its own with its own event loop, so that no console request (a flood of
    sign-ins, a big export) ever runs on the loop that paces every call's RTP; its handlers share only thread-safe
    state with the calls (the stores, the live view, the metrics)."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]  # run_server owns Ctrl-C
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="console",
                                       daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join)


def recover_recordings(store: TicketStore, settings: Settings) -> list[str]:
    """Before taking calls: repair the recordings this node was making when it stopped (another node's recordings
    in a shared store are still being made) and queue them for transcription."""
    try:
        recovered = recover_interrupted(store, settings.recordings_dir,  # type: ignore[arg-type]
                                        datetime.now(timezone.utc), node=settings.node_id)
    except (SQLAlchemyError, OSError) as exc:
        logger.error("interrupted recordings of node %s not recovered: %s", settings.node_id, problem(exc))
        return []
    if recovered:
        logger.warning("node %s: %d recording(s) cut off when it stopped repaired, flagged interrupted and queued "
                       "for transcription: %s", settings.node_id, len(recovered), " ".join(recovered))
    return recovered


async def serve_hotline(settings: Settings, config: SipServerConfig, *, console: bool = True,
                        drain_seconds: float = 30.0, stop: asyncio.Event | None = None,
                        ready: Callable[[SipServer], None] | None = None,
                        queue: QueueOptions | None = None,
                        reload: Callable[[], Settings] | None = None) -> SipServer:
    """The production path: the shipped flow on every SIP call, the queue and callbacks (operators from
    `queue`, else the settings), and the operator console beside it. With `reload`, SIGHUP reads the settings
    again and applies their operators."""
    from ivr.queue.bridge import bridge
    from ivr.queue.hotline import HotlineQueue
    from ivr.rtp.metrics import ClockCollector
    from ivr.service import HotlineService, InbandDigits, no_model_message
    from ivr.sip.metrics import SipCollector
    from ivr.sip.uac import OutboundResult, place_call

    legs = OutboundCalls()
    web_socket = console_socket(settings) if console else None  # a port in use fails before anything starts
    service = HotlineService.from_settings(settings)
    if service.engine is None:
        logger.warning(no_model_message())
    service.warm()
    recover_recordings(service.store, settings)
    started: list[SipServer] = []

    async def outbound(uri: str, proxy: tuple[str, int]) -> OutboundResult:
        """Operator and callback legs share the server's RTP ports and media clock and its addresses."""
        server = started[0]
        return await place_call(uri, proxy, local_host=server.route_ip(proxy), ports=server.ports,
                                clock=server.clock, advertise=config.advertised_host,
                                rtp_timeout_s=config.rtp_timeout, calls=legs)

    def on_ready(server: SipServer) -> None:
        started.append(server)
        # Everything loaded so far (flow, prompts, classifier, console) lives as long as the process: frozen out of
        # the collector, a full collection scans only what calls and requests made since (a few ms, not the
        # 160-190 ms pauses that stalled the media clock under a console flood).
        gc.collect()
        gc.freeze()
        if ready is not None:
            ready(server)

    hq = HotlineQueue(settings, queue or QueueOptions.from_settings(settings), service.prompts, service.store,
                      service.live, place_call=outbound, bridge=bridge, inband=InbandDigits)
    service.desk = hq.desk
    ClockCollector(lambda: started[0].clock if started else None, hq.metrics.registry)  # /metrics: media stalls
    SipCollector(lambda: started[0] if started else None, hq.metrics.registry)  # /metrics: refusals, log floods
    queue_stop = asyncio.Event()
    queue_task = asyncio.create_task(hq.run(queue_stop))
    web: ConsoleThread | None = None
    if web_socket is not None:
        from ivr.console.app import create_app

        web = ConsoleThread(create_app(settings, store=service.store, live=service.live, metrics=hq.metrics.registry,
                                       agents=hq.agents), web_socket)
        logger.info("operator console on http://%s:%d/", settings.console_host, settings.console_port)

    async def handler(channel: SipChannel) -> None:
        await service.handle_call(channel)

    def on_sighup() -> None:
        assert reload is not None
        try:
            hq.reconfigure(reload())
        except ConfigError as exc:
            logger.error("configuration not reloaded: %s", exc)

    loop = asyncio.get_running_loop()
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:  # on stopping, the queue dials no more callbacks nor connects more callers; those in progress drain
        return await run_server(config, handler, stop, drain_seconds, on_ready, outbound=legs,
                                on_stopping=queue_stop.set)
    finally:
        if reload is not None:
            loop.remove_signal_handler(signal.SIGHUP)
        queue_stop.set()
        try:  # its callbacks' calls have been hung up: it ends at once, unless something is stuck
            await asyncio.wait_for(asyncio.shield(queue_task), 5.0)
        except asyncio.TimeoutError:
            logger.warning("the queue did not stop within 5 s of the calls: cancelled")
            queue_task.cancel()
            await asyncio.gather(queue_task, return_exceptions=True)
        if web is not None:
            await web.stop()


@app.callback(invoke_without_command=True)
def serve(
    host: str | None = typer.Option(None, help="SIP listen address (default: the sip_host setting)."),
    port: int | None = typer.Option(None, help="SIP UDP port (default: the sip_port setting)."),
    allow: list[str] = typer.Option([], "--allow", metavar="ADDR", help=(
        "Take SIP only from this address or network (CIDR), repeatable (default: the sip_allow setting, else "
        "everyone).")),
    trust: list[str] = typer.Option([], "--trust", metavar="ADDR", help=(
        "A trusted trunk or proxy (SBC, Kamailio), address or CIDR, repeatable: allowed, and no per-source INVITE "
        "limit, only the global one (default: the sip_trusted setting).")),
    advertise: str | None = typer.Option(None, help="Address to put in SDP/Contact (default: route to caller)."),
    ring_seconds: float = typer.Option(0.0, help="Ring this long (180) before answering."),
    max_calls_per_source: int | None = typer.Option(None, help=(
        "Calls at once from one untrusted address (default: sip_max_calls_per_source, 0 = no cap).")),
    drain: float | None = typer.Option(None, metavar="SECONDS", help=(
        "On Ctrl-C/SIGTERM calls may go on this long; then the rest are hung up and the server exits "
        "(default: the drain_s setting, 30).")),
    console: bool = typer.Option(True, "--console/--no-console", help="Run the operator console beside SIP."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Mark the console's cookies Secure (behind "
                                        "HTTPS; default: the console_secure_cookies setting)."),
    demo: bool = typer.Option(False, "--demo", help="Answer with a beep and log keys instead of running the flow."),
) -> None:
    """Answer SIP calls over UDP, run the call flow on each and write tickets; Ctrl-C drains calls, SIGHUP
    reloads the operators from the configuration."""
    from dataclasses import replace

    from ivr.commands import context
    from ivr.flow import FlowError
    from prompts import PromptError

    flags = {"sip_host": host, "sip_port": port, "sip_allow": tuple(allow) or None, "sip_trusted": tuple(trust) or None,
             "sip_max_calls_per_source": max_calls_per_source, "drain_s": drain,
             "console_secure_cookies": secure_cookies or None}
    settings = replace(context.settings(), **{k: v for k, v in flags.items() if v is not None})
    if settings.log_level == "WARNING":
        logging.getLogger().setLevel(logging.INFO)  # a server says what it is doing
    cfg = server_config(settings, ring_seconds, advertise)
    try:
        if demo:
            asyncio.run(run_server(cfg, demo_handler, drain_seconds=settings.drain_s))
        else:
            asyncio.run(serve_hotline(settings, cfg, console=console, drain_seconds=settings.drain_s,
                                      reload=context.reload))
    except (FlowError, PromptError) as exc:
        raise context.fail(str(exc), 2) from None
    except OSError as exc:  # e.g. a full disk at start-up: one line, no traceback
        raise context.fail(str(exc)) from None
