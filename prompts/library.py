"""The prompts a call plays, loaded into memory once: recorded WAVs first, then rendered ones."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from asr.audio import SAMPLE_RATE, AudioFormatError, read_wav
from prompts.catalogue import STYLES, Catalogue, PromptError
from prompts.render import recorded_path

__all__ = ["PromptLibrary", "beep"]

log = logging.getLogger(__name__)


def beep(ms: int = 300, hz: float = 1000.0, dbfs: float = -12.0) -> bytes:
    """A sine tone (the record beep, and the stand-in for a prompt that is missing)."""
    t = np.arange(SAMPLE_RATE * ms // 1000) / SAMPLE_RATE
    amp = 32768 * 10 ** (dbfs / 20)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return (amp * ramp * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


class PromptLibrary:
    """Prompt id + style -> 8 kHz PCM, all loaded at start so a call never waits for disk or TTS."""

    def __init__(self, catalogue: Catalogue, cache_dir: Path, recorded_dir: Path | None = None) -> None:
        self.catalogue = catalogue
        self._audio: dict[tuple[str, str], bytes] = {}
        self.missing: list[str] = []
        for style in STYLES:
            for pid in catalogue.prompts:
                path = recorded_path(recorded_dir, pid, style) if recorded_dir else None
                path = path or cache_dir / style / f"{pid}.wav"
                try:
                    self._audio[(pid, style)] = read_wav(path)
                except AudioFormatError:
                    self.missing.append(f"{style}/{pid}")
        if self.missing:
            log.warning(
                "%d prompts are not rendered (e.g. %s): run `ivr prompts build`; a tone plays in their place",
                len(self.missing), self.missing[0],
            )

    def get(self, prompt_id: str, style: str = "standard") -> bytes:
        """The prompt's audio; a short tone if it was never rendered (the call goes on)."""
        if prompt_id not in self.catalogue:
            raise PromptError(f"prompt {prompt_id!r} is not in {self.catalogue.path}")
        return self._audio.get((prompt_id, style)) or self._audio.get((prompt_id, "standard")) or beep(200, 600)

    def text(self, prompt_id: str, style: str = "standard") -> str:
        return self.catalogue[prompt_id].for_style(style)
