"""The hotline as one object: settings in, a handler that runs any Channel's call through the flow out.

`simulate`, `serve` and `call --local` all build a HotlineService and hand it their channels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from asr.engine import Engine, ModelLoadError, VoskEngine
from ivr.channel import Channel
from ivr.config import Settings
from ivr.flow import Flow, load_flow
from ivr.flow.runner import CallRecord, FlowRunner
from ivr.media import CallIO
from ivr.tickets.sink import StoreSink
from ivr.tickets.store import TicketStore
from prompts import PromptLibrary, load_catalogue

__all__ = ["HotlineService", "NO_MODEL_MESSAGE", "resolve_model_dir"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "vosk-model-small-cn-0.22"
NO_MODEL_MESSAGE = (
    "no Vosk model is installed, so speech is recorded but not transcribed (tickets are marked "
    "'transcription pending'). Install one with `ivr models download {default}` or, offline, "
    "`ivr models install PATH/TO/{default}.zip`; or point IVR_VOSK_MODEL at a model directory."
)


def resolve_model_dir(settings: Settings) -> Path | None:
    """The model to load: the configured one (a directory or a name in the models folder), else the default."""
    name = settings.vosk_model
    candidates = []
    if name:
        candidates = [Path(name), settings.models_dir / name]  # type: ignore[operator]
    else:
        candidates = [settings.models_dir / DEFAULT_MODEL]  # type: ignore[operator]
    for c in candidates:
        if c.is_dir():
            return c
    if name:
        raise ModelLoadError(f"vosk_model {name!r}: no such model directory (looked in {settings.models_dir})")
    return None


@dataclass
class HotlineService:
    settings: Settings
    flow: Flow
    prompts: PromptLibrary
    engine: Engine | None
    store: TicketStore

    @classmethod
    def from_settings(cls, settings: Settings, *, load_engine: bool = True) -> "HotlineService":
        catalogue = load_catalogue(settings.prompts_catalogue)
        flow = load_flow(settings.flow, catalogue.prompts)
        prompts = PromptLibrary(catalogue, settings.prompts_cache, settings.prompts_recorded_dir)  # type: ignore[arg-type]
        engine: Engine | None = None
        if load_engine:
            model_dir = resolve_model_dir(settings)
            if model_dir is None:
                log.info(NO_MODEL_MESSAGE.format(default=DEFAULT_MODEL))
            else:
                engine = VoskEngine(model_dir)
        store = TicketStore(settings.database_url)
        return cls(settings, flow, prompts, engine, store)

    async def handle_call(self, channel: Channel) -> CallRecord:
        """Run one call through the flow; tickets are written as the caller speaks."""
        io = CallIO(channel, self.engine)
        sink = StoreSink(self.store, self.settings.recordings_dir)  # type: ignore[arg-type]
        runner = FlowRunner(self.flow, io, self.prompts, sink, frozenset(self.settings.elderly_numbers))
        return await runner.run()
