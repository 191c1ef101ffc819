"""The hotline as one object: settings in, a handler that runs any Channel's call through the flow out.

`simulate`, `serve` and `call --local` all build a HotlineService and hand it their channels.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from asr.engine import Engine, VoskEngine, warm_in_background
from asr.errors import ModelNotFoundError
from asr.model_files import DEFAULT_MODEL, how_to_get, resolve_model
from ivr.call import CallRecord
from ivr.channel.base import Channel, TransferResult
from ivr.channel.sip import SipChannel
from ivr.config import Settings
from ivr.dtmf.inband import InbandDigits
from ivr.kb import KbRegistry
from ivr.flow.kbstep import KbStats
from ivr.flow.registry import FlowRegistry
from ivr.flow.runner import FlowRunner
from ivr.hotline.kb import EntryIds, kb_prompts, kb_registry
from ivr.hotline.recognition import LiveRecognition
from ivr.live import LiveState
from ivr.media.callio import CallIO
from ivr.queue.desk import QueueDesk
from ivr.tickets.lookup import store_lookup
from ivr.tickets.shelf import RecordingShelf
from ivr.tickets.sink import StoreSink
from ivr.tickets.store import TicketStore
from ivr.triage.suggest import dispatch_suggester
from prompts import PromptLibrary, load_catalogue

__all__ = ["HotlineService", "no_model_message", "resolve_model_dir"]

log = logging.getLogger(__name__)

NO_MODEL_MESSAGE = (
    "no Vosk model is installed, so speech is recorded but not transcribed (tickets are marked "
    "'transcription pending'); {how}"
)


def resolve_model_dir(settings: Settings) -> Path | None:
    """The configured model (IVR_VOSK_MODEL / vosk_model), else the default one if installed, else None.

    A model that is configured but missing or broken is an error; only the default may be absent.
    """
    try:
        return resolve_model(settings.models_dir, config=settings.vosk_model).path  # type: ignore[arg-type]
    except ModelNotFoundError:
        if settings.vosk_model:
            raise
        return None


def no_model_message() -> str:
    return NO_MODEL_MESSAGE.format(how=how_to_get(DEFAULT_MODEL))


WARM_AUDIO_BYTES = 30 * 16000  # 30 s of 8 kHz PCM16


@dataclass
class HotlineService:
    settings: Settings
    flows: FlowRegistry
    prompts: PromptLibrary
    engine: Engine | None
    store: TicketStore
    live: LiveState = field(default_factory=LiveState)
    desk: QueueDesk | None = None  # queues SIP callers whom the flow hands to a person
    recognition: LiveRecognition | None = None  # with an engine: decoding threads, admission, reply times
    shelf: RecordingShelf | None = None  # finished recordings copied to the centre's shared folder
    kb: KbRegistry | None = None  # the knowledge base kb nodes answer from (its files followed for new calls)
    kb_stats: KbStats = field(default_factory=KbStats)

    @classmethod
    def from_settings(cls, settings: Settings, *, load_engine: bool = True) -> HotlineService:
        settings.make_dirs()
        catalogue = load_catalogue(settings.prompts_catalogue)
        kb = kb_registry(settings)  # a bad knowledge base stops the start, as a bad flow does
        flows = FlowRegistry(settings.flow, catalogue.prompts, EntryIds(kb) if kb is not None else None)
        prompts = PromptLibrary(catalogue, settings.prompts_cache, settings.prompts_recorded_dir,  # type: ignore[arg-type]
                                extra=kb_prompts(settings))
        engine: Engine | None = None
        if load_engine:
            model_dir = resolve_model_dir(settings)
            if model_dir is None:
                log.info(no_model_message())
            else:
                engine = VoskEngine(model_dir, recycle_after_s=settings.asr_recycle_after_s)
        store = TicketStore(settings.database_url, suggest=dispatch_suggester(settings.data_dir), tz=settings.tz)
        recognition = LiveRecognition.from_settings(settings) if engine is not None else None
        shelf = (RecordingShelf(settings.recordings_dir, settings.recordings_shared_dir)  # type: ignore[arg-type]
                 if settings.recordings_shared_dir is not None else None)
        return cls(settings, flows, prompts, engine, store, recognition=recognition, shelf=shelf, kb=kb)

    def use_engine(self, engine: Engine) -> None:
        """Recognise callers with `engine` (e.g. Whisper in a simulated call) through live recognition's threads."""
        self.engine = engine
        self.recognition = LiveRecognition.from_settings(self.settings)

    def warm(self) -> threading.Thread | None:
        """Warm `asr_warm` recognisers on 30 s of the prompts (speech) on a low-priority thread, for a server."""
        if not isinstance(self.engine, VoskEngine) or not self.settings.asr_warm:
            return None
        speech = b"".join(self.prompts.get(p) for p in self.prompts.catalogue.prompts)[:WARM_AUDIO_BYTES]
        return warm_in_background(self.engine, speech, self.settings.asr_warm)

    async def handle_call(self, channel: Channel) -> CallRecord:
        """Run one call through the flow; tickets are written as the caller speaks."""
        flow = self.flows.current()  # a call keeps the version it started with
        rec = self.recognition
        io = CallIO(channel, self.engine, InbandDigits() if channel.inband_dtmf else None,
                    scheduler=rec.scheduler if rec else None, admission=rec.admission if rec else None,
                    replies=rec.replies if rec else None)
        sink = StoreSink(self.store, self.settings.recordings_dir, self.settings.node_id,  # type: ignore[arg-type]
                         self.shelf)
        info = channel.info

        def on_node(node_id: str, flags: frozenset[str]) -> None:
            self.live.call_updated(info.call_id, state=node_id, elderly="elderly" in flags, urgent="urgent" in flags)

        runner = FlowRunner(flow, io, self.prompts, sink, frozenset(self.settings.elderly_numbers),
                            clock=partial(datetime.now, self.settings.tz), ticket_lookup=store_lookup(self.store),
                            on_node=on_node,
                            kb=self.kb.latest() if self.kb is not None else None, kb_stats=self.kb_stats)
        if self.desk is not None and isinstance(channel, SipChannel):
            desk = self.desk

            async def to_queue(target: str) -> TransferResult:
                return await desk.handle(io, runner.call, target)

            channel.transfer_to = to_queue
        self.live.call_started(info.call_id, info.caller, state=flow.start,
                               elderly=info.caller in self.settings.elderly_numbers)
        try:
            return await runner.run()
        finally:
            self.live.call_ended(info.call_id)
