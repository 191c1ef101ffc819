"""The knowledge base's voice: each speakable entry's prompts rendered ahead of any call, so nothing is synthesised
during one.

Per entry, in every prompt style: ``kb_<id>`` its spoken answer, ``kbq_<id>`` "您是想问<title>吗？" and ``kbt_<id>``
its title (said in a list offered by key). They go to their own cache folder (`kb_cache_dir`), which calls read
through `prompts.files.FilePrompts`; recorded WAVs (`<recorded>/<style>/kb_<id>.wav` or `<recorded>/kb_<id>.wav`)
win over text-to-speech as for catalogue prompts. Only what changed is rendered again, and every file is replaced
atomically, so a caller hears the previous audio until the new one is ready.

`ivr prompts build` calls `render_kb`. After a supervisor's edit the console renders that one entry again with
`rerender_entry(entry, cache_dir, recorded_dir, voice)` in a background task (`ivr.hotline.kb.entry_rerenderer` makes
it for the settings and `serve_hotline` gives it to the console); `rerender_entry_later` runs it on a thread.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from ivr.flow.kbstep import answer_prompt, question_prompt, title_prompt
from ivr.kb import Entry, KnowledgeBase
from prompts.catalogue import Catalogue, PromptText
from prompts.render import RenderStats, render_catalogue
from prompts.voices import Voice

__all__ = ["kb_cache_dir", "entry_prompts", "render_kb", "rerender_entry", "rerender_entry_later"]

log = logging.getLogger(__name__)

_one_at_a_time = threading.Lock()  # renders share the cache's manifest


def kb_cache_dir(prompts_cache: Path) -> Path:
    """Where the knowledge base's prompts are rendered, beside the catalogue's."""
    return prompts_cache / "kb"


def entry_prompts(entry: Entry) -> list[PromptText]:
    """The prompts a call may say for an entry: its answer, the question putting it to the caller, its title."""
    asked = f"您是想问{entry.title}吗？"
    return [PromptText(answer_prompt(entry.id), entry.spoken, entry.spoken),
            PromptText(question_prompt(entry.id), asked, asked),
            PromptText(title_prompt(entry.id), entry.title, entry.title)]


def _render(entries: Iterable[Entry], where: Path, cache_dir: Path, recorded_dir: Path | None,
            voice: Callable[[], Voice], progress: Callable[[str], None] | None = None) -> RenderStats:
    prompts = {p.id: p for e in entries for p in entry_prompts(e)}
    with _one_at_a_time:
        return render_catalogue(Catalogue(where, prompts), cache_dir, recorded_dir, engine_factory=voice,
                                progress=progress)


def render_kb(kb: KnowledgeBase, today: date, cache_dir: Path, recorded_dir: Path | None,
              voice: Callable[[], Voice], progress: Callable[[str], None] | None = None) -> RenderStats:
    """Render the prompts of every entry speakable `today` that changed since the last build."""
    speakable = [e for e in kb.entries if e.speakable(today)]
    return _render(speakable, kb.directory, cache_dir, recorded_dir, voice, progress)


def rerender_entry(entry: Entry, cache_dir: Path, recorded_dir: Path | None, voice: Callable[[], Voice],
                   today: date | None = None) -> RenderStats | None:
    """Render one entry's prompts again now (after an edit), only those whose text changed; calls keep the previous
    audio until each new file replaces it. An entry not speakable (today) is left as it is (None): calls never speak
    it. A failing voice raises, and the previous audio stays."""
    if not entry.speakable(today or date.today()):
        log.info("kb entry %s is not speakable; its prompts are not rendered", entry.id)
        return None
    stats = _render([entry], Path(entry.file), cache_dir, recorded_dir, voice)
    log.info("kb entry %s: %d prompt(s) rendered again, %d unchanged", entry.id, stats.rendered, stats.unchanged)
    return stats


def rerender_entry_later(entry: Entry, cache_dir: Path, recorded_dir: Path | None, voice: Callable[[], Voice],
                         today: date | None = None) -> threading.Thread:
    """`rerender_entry` on a background thread, which it returns; a failure is logged."""

    def work() -> None:
        try:
            rerender_entry(entry, cache_dir, recorded_dir, voice, today)
        except Exception:  # a broken voice must not take the caller down: the old audio stays
            log.exception("kb entry %s: its prompts were not rendered again; calls keep the previous audio",
                          entry.id)

    thread = threading.Thread(target=work, name=f"kb-render-{entry.id}", daemon=True)
    thread.start()
    return thread
