"""`serve_hotline`: one hotline node running: the shipped flow on every SIP call, the queue and callbacks, the
operator console beside it.

Before taking calls, the recordings this node (`node_id`) was making when it last stopped are repaired and queued
for transcription; the node's transcription worker works the job list off at low priority. On stopping, the queue dials no more callbacks nor connects more callers; the calls in progress
drain (see `ivr.hotline.sip_endpoint`).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from asr.errors import EngineError, ModelError

from ivr.channel.sip import SipChannel
from ivr.config import ConfigError, Settings
from ivr.console.app import create_app
from ivr.dtmf.inband import InbandDigits
from ivr.hotline.console_thread import ConsoleThread, console_socket
from ivr.hotline.kb import KbCollector, entry_rerenderer
from ivr.hotline.queueing import HotlineQueue, QueueOptions
from ivr.hotline.recognition import RecognitionCollector, status_path
from ivr.hotline.service import HotlineService, no_model_message
from ivr.hotline.transcription import run_worker_thread, second_pass_engine
from ivr.hotline.sip_endpoint import run_server
from ivr.media.bridge import bridge
from ivr.rtp.metrics import ClockCollector
from ivr.sip.endpoint import SipServerConfig
from ivr.sip.metrics import SipCollector
from ivr.sip.uac import OutboundCalls, OutboundResult, place_call
from ivr.sip.uas import SipServer
from ivr.storage import problem
from ivr.tickets.recovery import recover_interrupted
from ivr.tickets.model import TicketNotFound, TranscriptionStatus
from ivr.tickets.store import TicketStore

__all__ = ["serve_hotline", "recover_recordings", "finished_checksum", "start_transcription"]

logger = logging.getLogger(__name__)


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


def finished_checksum(store: TicketStore, name: str) -> str | None:
    """The checksum of the finished recording `name` (<day>/<ticket number>.wav), None if it is not one."""
    try:
        ticket = store.get(Path(name).stem)
    except (TicketNotFound, SQLAlchemyError):
        return None
    if ticket.recording != name or ticket.transcription == TranscriptionStatus.RECORDING:
        return None
    return ticket.recording_sha256 or None


def start_transcription(service: HotlineService, settings: Settings, stop: asyncio.Event,
                        spare: Callable[[], bool] | None = None) -> asyncio.Task[int] | None:
    """The node's transcription worker (the second pass, and recordings left without a transcript) on a
    low-priority thread, taking jobs only while `spare()`; None when its engine cannot be loaded (said in the log:
    the jobs wait for a worker)."""
    engine = service.engine if (settings.transcribe_engine == "vosk" and not settings.transcribe_model) else None
    if engine is None:
        try:
            engine = second_pass_engine(settings)
        except (ModelError, EngineError) as exc:
            logger.warning("no transcription after calls on this node: %s", exc)
            return None
    return asyncio.create_task(run_worker_thread(service.store, engine, settings, stop, spare))


async def serve_hotline(settings: Settings, config: SipServerConfig, *, console: bool = True,
                        drain_seconds: float = 30.0, stop: asyncio.Event | None = None,
                        ready: Callable[[SipServer], None] | None = None,
                        queue: QueueOptions | None = None,
                        reload: Callable[[], Settings] | None = None) -> SipServer:
    """The production path: the shipped flow on every SIP call, the queue and callbacks (operators from
    `queue`, else the settings), and the operator console beside it. With `reload`, SIGHUP reads the settings
    again and applies their operators."""
    legs = OutboundCalls()
    web_socket = console_socket(settings) if console else None  # a port in use fails before anything starts
    service = HotlineService.from_settings(settings)
    if service.engine is None:
        logger.warning(no_model_message())
    service.warm()
    recover_recordings(service.store, settings)
    if service.shelf is not None:  # what the shared folder missed while this node was down or it was away
        service.shelf.sweep_folder(lambda name: finished_checksum(service.store, name))
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
    KbCollector(service.kb_stats, hq.metrics.registry)  # /metrics: questions asked, answered, sent to a person
    queue_stop = asyncio.Event()
    queue_task = asyncio.create_task(hq.run(queue_stop))
    side_tasks: list[asyncio.Task[object]] = []
    recognition = service.recognition
    if recognition is not None and service.engine is not None:  # live recognition's load
        RecognitionCollector(recognition, hq.metrics.registry)
        side_tasks.append(asyncio.create_task(recognition.publish(status_path(settings.data_dir), queue_stop)))
    transcribing = start_transcription(service, settings, queue_stop,  # after calls, while live recognition has room
                                       recognition.admission.spare if recognition is not None else None)
    if transcribing is not None:  # a job in progress is finished (or, killed, taken up again after its lease)
        side_tasks.append(transcribing)
    web: ConsoleThread | None = None
    if web_socket is not None:
        web = ConsoleThread(create_app(settings, store=service.store, live=service.live, metrics=hq.metrics.registry,
                                       agents=hq.agents, kb=service.kb, rerender=entry_rerenderer(settings)),
                            web_socket)
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
        await asyncio.gather(*side_tasks, return_exceptions=True)
        if service.recognition is not None:
            service.recognition.scheduler.shutdown()
        try:  # its callbacks' calls have been hung up: it ends at once, unless something is stuck
            await asyncio.wait_for(asyncio.shield(queue_task), 5.0)
        except TimeoutError:
            logger.warning("the queue did not stop within 5 s of the calls: cancelled")
            queue_task.cancel()
            await asyncio.gather(queue_task, return_exceptions=True)
        if web is not None:
            await web.stop()
        if service.shelf is not None:  # the last recordings reach the shared folder before the node goes
            await asyncio.to_thread(service.shelf.close)
