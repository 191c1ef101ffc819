"""The knowledge base in a running hotline: its files followed for new questions, its prompts read from their
cache, what callers did with it counted for `/metrics`, and one entry's prompts rendered again after an edit."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric

from ivr.config import Settings
from ivr.flow.kbstep import KbStats
from ivr.flow.kbvoice import kb_cache_dir, rerender_entry
from ivr.kb import Entry, KbRegistry
from prompts.files import FilePrompts
from prompts.render import RenderStats
from prompts.voices import Voice, choose_voice

__all__ = ["KbCollector", "EntryIds", "kb_prompts", "entry_rerenderer", "kb_registry"]

log = logging.getLogger(__name__)

_EVENTS = {
    "asked": "Questions callers put to the knowledge base (spoken, or an entry chosen by key)",
    "answered": "Answers the knowledge base spoke",
    "confirmed": "Best entries callers confirmed (您是想问…吗？ yes)",
    "declined": "Best entries callers declined (no)",
    "to_person": "Callers the knowledge base sent on to a person",
    "tickets": "Tickets callers left after an answer",
}


class KbCollector:
    """`/metrics` for the knowledge base in calls: ``ivr_kb_<event>_total``, read at each scrape."""

    def __init__(self, stats: KbStats, registry: CollectorRegistry | None = None) -> None:
        self.stats = stats
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        snap = self.stats.snapshot()
        for event, doc in _EVENTS.items():
            yield CounterMetricFamily(f"ivr_kb_{event}", doc, value=snap[event])


class EntryIds:
    """The entry ids of the knowledge base as it is now, which a flow edited later is checked against (its kb
    nodes' `top`)."""

    def __init__(self, registry: KbRegistry) -> None:
        self.registry = registry

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.registry.current().by_id


def kb_registry(settings: Settings) -> KbRegistry | None:
    """The knowledge base of `kb_dir`, followed for new calls; None when the folder has no files (kb nodes then
    send their callers to a person). A bad knowledge base raises KbError: the hotline does not start with it."""
    if not any(settings.kb_dir.glob("*.yaml")):
        log.warning("no knowledge base in %s: callers who ask a question are put through to a person",
                    settings.kb_dir)
        return None
    return KbRegistry(settings.kb_dir)


def kb_prompts(settings: Settings) -> FilePrompts:
    """The knowledge base's rendered (or recorded) prompts, as calls read them."""
    return FilePrompts(kb_cache_dir(settings.prompts_cache), settings.prompts_recorded_dir)  # type: ignore[arg-type]


def entry_rerenderer(settings: Settings) -> Callable[[Entry], RenderStats | None]:
    """What the console calls (in a background task) after a supervisor saved an entry: its prompts rendered again
    (`ivr.flow.kbvoice.rerender_entry`) with the voice of `ivr prompts build` (`prompts_voice`), made for each render
    on the thread that uses it (a text-to-speech engine is not to be shared between threads)."""

    def make_voice() -> Voice:
        return choose_voice(settings.prompts_voice, settings.data_dir / "voices")[0]

    def rerender(entry: Entry) -> RenderStats | None:
        return rerender_entry(entry, kb_cache_dir(settings.prompts_cache),  # type: ignore[arg-type]
                              settings.prompts_recorded_dir, make_voice)

    return rerender
