"""Render catalogue prompts to 8 kHz WAV with the chosen voice, only those whose text or voice changed.

Every text goes through `prompts.numbers.normalise` (numbers said by meaning) before the voice, and every
voice's output through `prompts.shaping.shape` (telephone band, trimmed, levelled on active speech per style).
Recorded WAVs in the recorded folder always win over text-to-speech. Counted sentences are rendered whole for
each of their values (queue_position_15), unless a voice artist recorded their pieces: then a call splices the
recorded pieces, so the caller hears one voice.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.audio import write_wav
from prompts.catalogue import STYLES, Catalogue, CountedText
from prompts.numbers import normalise
from prompts.shaping import EDGE_MS, shape
from prompts.voice_espeak import EspeakVoice
from prompts.voices import Voice

__all__ = ["STYLE_RATE", "STYLE_LEVEL_DBFS", "RenderStats", "render_catalogue", "recorded_path", "pieces_recorded"]

log = logging.getLogger(__name__)

SLOW_RATE = 0.8  # speaking rate of the slower styles
LOUD_DBFS = -16.0  # active speech level of the louder styles (standard -20 dBFS)
STYLE_RATE = {"standard": 1.0, "slow": SLOW_RATE, "loud": 1.0, "slow_loud": SLOW_RATE, "elderly": SLOW_RATE}
STYLE_LEVEL_DBFS = {"standard": -20.0, "slow": -20.0, "loud": LOUD_DBFS, "slow_loud": LOUD_DBFS, "elderly": LOUD_DBFS}


@dataclass(frozen=True)
class RenderStats:
    rendered: int
    unchanged: int
    recorded: int
    voice: str = ""
    render_seconds: float = 0.0  # time spent in the voice
    audio_seconds: float = 0.0  # length of what it rendered
    voice_calls: int = 0  # renderings by the voice: styles that differ only in level share one


def render_catalogue(
    catalogue: Catalogue,
    cache_dir: Path,
    recorded_dir: Path | None = None,
    styles: Sequence[str] = STYLES,
    engine_factory: Callable[[], Voice] = EspeakVoice,
    progress: Callable[[str], None] | None = None,
) -> RenderStats:
    """Render what changed into `cache_dir/<style>/<id>.wav`; `manifest.json` keeps the text digests and voice.

    The voice is made (`engine_factory`) only when some prompt has no recording.
    """
    manifest_path = cache_dir / "manifest.json"
    manifest: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    wanted = [(style, prompt) for style in styles for prompt in catalogue.prompts.values()]
    wanted += [(style, prompt) for style in styles for counted, prompt in catalogue.sentences().values()
               if not pieces_recorded(recorded_dir, counted, style)]
    todo = [(style, prompt) for style, prompt in wanted
            if recorded_dir is None or recorded_path(recorded_dir, prompt.id, style) is None]
    voice = engine_factory() if todo else None
    rendered = unchanged = 0
    spent = audio = 0.0
    voiced: dict[tuple[str, float], bytes] = {}  # (text, rate) -> what the voice said, shared between styles
    for style, prompt in todo:
        assert voice is not None
        key, target = f"{style}/{prompt.id}", cache_dir / style / f"{prompt.id}.wav"
        render_key = _render_key(prompt.digest(style), style, voice.key)
        if manifest.get(key) == render_key and target.is_file():
            unchanged += 1
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            said = (normalise(prompt.for_style(style)), STYLE_RATE[style])
            pcm = voiced.get(said)
            if pcm is None:  # loud is standard louder, elderly slow_loud's text: the voice says each once
                started = time.perf_counter()
                pcm = voiced[said] = voice.render(*said)
                spent += time.perf_counter() - started
                audio += len(pcm) / 16000
            partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
            write_wav(partial, shape(pcm, STYLE_LEVEL_DBFS[style]))
            os.replace(partial, target)  # a call reading the prompt gets the old audio or the new, never half
            manifest[key] = render_key
            manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            rendered += 1
        if progress:
            progress(key)
    recorded = len(styles) * (len(catalogue.prompts) + len(catalogue.sentences())) - len(todo)
    return RenderStats(rendered, unchanged, recorded, voice.name if voice else "", spent, audio, len(voiced))


def _render_key(text_digest: str, style: str, voice: str) -> str:
    """The text's digest plus the render settings: a new voice, rate or level renders everything again."""
    settings = f"{voice}|{STYLE_RATE[style]}|{STYLE_LEVEL_DBFS[style]}|{EDGE_MS}|numbers-1|band-1|active-level-1|edges-2"
    return f"{text_digest}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


def pieces_recorded(recorded_dir: Path | None, counted: CountedText, style: str) -> bool:
    """Whether a voice artist recorded the words of a counted sentence (in this style): then it is spliced from
    them, never rendered whole by text-to-speech."""
    return recorded_dir is not None and any(recorded_path(recorded_dir, p, style) for p in (counted.before,
                                                                                            counted.after) if p)


def recorded_path(recorded_dir: Path, prompt_id: str, style: str) -> Path | None:
    """A voice artist's recording for this prompt: `<dir>/<style>/<id>.wav`, else `<dir>/<id>.wav`."""
    for p in (recorded_dir / style / f"{prompt_id}.wav", recorded_dir / f"{prompt_id}.wav"):
        if p.is_file():
            return p
    return None
