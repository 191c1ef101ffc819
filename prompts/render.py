"""Render catalogue prompts to 8 kHz WAV with pyttsx3 (espeak-ng), only those whose text changed.

espeak-ng reads Chinese characters poorly (it spells tone numbers with English rules), so text is turned into
tone-numbered pinyin (pypinyin) and read with the `cmn-latn-pinyin` voice; digits are first written as Chinese
digits read one by one, as a hotline says numbers. Recorded WAVs in the recorded folder always win over TTS.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.audio import read_wav, write_wav
from prompts.catalogue import STYLES, Catalogue, PromptError
from prompts.numbers import normalise

__all__ = ["MANDARIN_VOICE", "RenderStats", "TtsEngine", "to_pinyin", "render_catalogue", "level_pcm"]

log = logging.getLogger(__name__)

MANDARIN_VOICE = "sit/cmn-latn-pinyin"
BASE_RATE_WPM = 210  # espeak counts each pinyin syllable as a word: ~3.5 syllables/s, a clear hotline pace
RENDER_ATTEMPTS = 3
EDGE_MS = 120  # silence kept before and after a rendered prompt
STYLE_RATE = {"standard": 1.0, "elderly": 0.8}
STYLE_LEVEL_DBFS = {"standard": -20.0, "elderly": -16.0}  # elderly prompts play louder


def to_pinyin(text: str) -> str:
    """Mandarin text -> tone-numbered pinyin for espeak-ng; numbers are first written out as they are said."""
    from pypinyin import Style, lazy_pinyin

    text = normalise(text)
    parts = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: list(s))  # type: ignore[arg-type,return-value]
    out = " ".join(p for p in parts if p.strip())
    return re.sub(r"\s*([，。、；：！？,.;:!?])\s*", lambda m: ", " if m.group(1) in "，、；：,;:" else ". ", out)


def level_pcm(pcm: bytes, target_dbfs: float, knee: float = 0.5) -> bytes:
    """Scale speech to a target RMS level; peaks above `knee` (of full scale) are rounded off softly, never clipped.

    espeak's output has a high crest factor, so reaching a loud level (the elderly style) by gain alone would
    clip; the soft knee is what a telephone-prompt limiter does.
    """
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    if rms <= 0:
        return pcm
    y = x * (10 ** (target_dbfs / 20) / rms)
    over = np.abs(y) > knee
    head = 0.97 - knee
    y[over] = np.sign(y[over]) * (knee + head * np.tanh((np.abs(y[over]) - knee) / head))
    return np.rint(y * 32768.0).astype("<i2").tobytes()


class TtsEngine:
    """pyttsx3 driving espeak-ng, checked to really use the Mandarin voice."""

    def __init__(self, driver: str = "espeak") -> None:
        try:
            import pyttsx3

            self._engine = pyttsx3.init(driver)
        except Exception as exc:  # pyttsx3 raises bare errors when libespeak-ng is missing
            raise PromptError(
                f"no text-to-speech engine ({exc}); install espeak-ng (apt-get install espeak-ng) "
                "or put recorded WAVs in the prompts' recorded folder"
            ) from None
        self._engine.setProperty("voice", MANDARIN_VOICE)
        self._engine.runAndWait()  # pyttsx3 queues property changes until the loop runs
        if self._engine.getProperty("voice") != MANDARIN_VOICE:
            raise PromptError(f"espeak-ng has no Mandarin voice {MANDARIN_VOICE!r}; install the espeak-ng-data package")

    def render(self, text: str, rate: float) -> bytes:
        """Speak `text` and return it as 8 kHz PCM16."""
        # the rate goes inside the utterance as an espeak embedded command (Ctrl-A, value, S): pyttsx3's
        # setProperty("rate") is queued and now and then reached espeak only after the next prompt started
        spoken = f"\x01{int(BASE_RATE_WPM * rate)}S " + to_pinyin(text)
        with tempfile.TemporaryDirectory() as tmp:
            for attempt in range(RENDER_ATTEMPTS):  # the espeak driver now and then writes nothing for one-syllable texts
                wav = Path(tmp) / f"p{attempt}.wav"
                with contextlib.redirect_stdout(io.StringIO()):  # the espeak driver prints "Audio saved to ..."
                    self._engine.save_to_file(spoken, str(wav))
                    self._engine.runAndWait()
                if wav.is_file() and wav.stat().st_size > 44:
                    return read_wav(wav)
                log.warning("espeak-ng wrote no audio for %r (attempt %d)", text, attempt + 1)
            raise PromptError(f"espeak-ng produced no audio for {text!r}")


@dataclass(frozen=True)
class RenderStats:
    rendered: int
    unchanged: int
    recorded: int


def render_catalogue(
    catalogue: Catalogue,
    cache_dir: Path,
    recorded_dir: Path | None = None,
    styles: Iterable[str] = STYLES,
    engine_factory: Callable[[], TtsEngine] = TtsEngine,
    progress: Callable[[str], None] | None = None,
) -> RenderStats:
    """Render what changed into `cache_dir/<style>/<id>.wav`; `manifest.json` keeps the text digests."""
    manifest_path = cache_dir / "manifest.json"
    manifest: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    engine: TtsEngine | None = None
    rendered = unchanged = recorded = 0
    for style in styles:
        (cache_dir / style).mkdir(parents=True, exist_ok=True)
        for prompt in catalogue.prompts.values():
            key = f"{style}/{prompt.id}"
            target = cache_dir / style / f"{prompt.id}.wav"
            if recorded_dir is not None and recorded_path(recorded_dir, prompt.id, style) is not None:
                recorded += 1
            elif manifest.get(key) == _render_key(prompt.digest(style), style) and target.is_file():
                unchanged += 1
            else:
                engine = engine or engine_factory()
                pcm = engine.render(prompt.for_style(style), STYLE_RATE[style])
                write_wav(target, level_pcm(trim_edges(pcm), STYLE_LEVEL_DBFS[style]))
                manifest[key] = _render_key(prompt.digest(style), style)
                manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
                rendered += 1
            if progress:
                progress(key)
    return RenderStats(rendered, unchanged, recorded)


def _render_key(text_digest: str, style: str) -> str:
    """The text's digest plus the render settings: a new rate, level or voice renders everything again."""
    settings = f"{MANDARIN_VOICE}|{BASE_RATE_WPM}|{STYLE_RATE[style]}|{STYLE_LEVEL_DBFS[style]}|{EDGE_MS}|numbers-1"
    return f"{text_digest}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


def trim_edges(pcm: bytes, keep_ms: int = EDGE_MS, threshold: int = 200) -> bytes:
    """Cut the TTS engine's leading and trailing silence down to `keep_ms`."""
    x = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > threshold)
    if not len(loud):
        return pcm
    keep = 8 * keep_ms
    return x[max(0, loud[0] - keep): loud[-1] + 1 + keep].tobytes()


def recorded_path(recorded_dir: Path, prompt_id: str, style: str) -> Path | None:
    """A voice artist's recording for this prompt: `<dir>/<style>/<id>.wav`, else `<dir>/<id>.wav`."""
    for p in (recorded_dir / style / f"{prompt_id}.wav", recorded_dir / f"{prompt_id}.wav"):
        if p.is_file():
            return p
    return None
