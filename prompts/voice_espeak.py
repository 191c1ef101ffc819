"""espeak-ng through pyttsx3: the fallback voice, always available where the espeak-ng package is installed.

espeak-ng reads Chinese characters poorly (it spells tone numbers with English rules), so text is turned into
tone-numbered pinyin (pypinyin) and read with the `cmn-latn-pinyin` voice.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
from pathlib import Path

from asr.audio import read_wav
from prompts.catalogue import PromptError, VoiceUnavailable
from prompts.numbers import normalise

__all__ = ["MANDARIN_VOICE", "EspeakVoice", "to_pinyin"]

log = logging.getLogger(__name__)

MANDARIN_VOICE = "sit/cmn-latn-pinyin"
BASE_RATE_WPM = 210  # espeak counts each pinyin syllable as a word: ~3.5 syllables/s, a clear hotline pace
RENDER_ATTEMPTS = 3


def to_pinyin(text: str) -> str:
    """Mandarin text -> tone-numbered pinyin for espeak-ng; numbers are first written out as they are said."""
    from pypinyin import Style, lazy_pinyin

    text = normalise(text)
    parts = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: list(s))  # type: ignore[arg-type,return-value]
    out = " ".join(p for p in parts if p.strip())
    return re.sub(r"\s*([，。、；：！？,.;:!?])\s*", lambda m: ", " if m.group(1) in "，、；：,;:" else ". ", out)


class EspeakVoice:
    """pyttsx3 driving espeak-ng, checked to really use the Mandarin voice."""

    name = f"espeak:{MANDARIN_VOICE}:{BASE_RATE_WPM}"
    key = name

    def __init__(self, driver: str = "espeak") -> None:
        try:
            import pyttsx3

            # an engine of its own: pyttsx3.init() hands every caller the process's one engine, and an engine
            # first run on another thread (a re-render in the background) never finishes on this one
            self._engine = pyttsx3.Engine(driver)
        except Exception as exc:  # pyttsx3 raises bare errors when libespeak-ng is missing
            raise VoiceUnavailable(
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
