"""The prompts a call plays, loaded into memory once: recorded WAVs first, then rendered ones."""
from __future__ import annotations

import logging
from pathlib import Path

from collections.abc import Sequence

import numpy as np

from asr.audio import SAMPLE_RATE, read_wav
from asr.errors import AudioFormatError
from prompts.catalogue import STYLES, Catalogue, PromptError
from prompts.compose import Cardinal, Counted, Digits, Part, cardinal_pieces, digit_groups, digit_pieces
from prompts.files import FilePrompts
from prompts.render import STYLE_LEVEL_DBFS, STYLE_RATE, pieces_recorded, recorded_path
from prompts.shaping import fade_edges, level_pcm, trim_silence

__all__ = ["PromptLibrary", "beep", "crossfaded", "trim_silence"]

log = logging.getLogger(__name__)

WORD_GAP_MS = 150  # between a prompt and a number read digit by digit, and between two prompts (a clause pause)
COUNT_GAP_MS = 30  # between a prompt and a count said inside its sentence: 前面还有 | 十五 | 位来电
CROSSFADE_MS = 20  # the pieces of one count overlap: 十 and 五 run into each other as in speech
DIGIT_GAP_MS = 60  # between the digits of one group (138 | 0013 | 8000); overlapping them was understood worse
GROUP_GAP_MS = 250  # between the groups of a number read digit by digit, as people pause reading one out
JOIN_FADE_MS = 5  # every piece fades in and out over this, so no join can click whatever the source


def _silence(ms: int, style: str) -> bytes:
    """A pause of `ms` at the standard pace, longer in the slower styles."""
    return bytes(2 * int(SAMPLE_RATE * ms / STYLE_RATE[style] / 1000))


def crossfaded(pieces: Sequence[bytes], ms: int = CROSSFADE_MS) -> bytes:
    """Pieces overlapped by `ms` with complementary fades (equal power), as the syllables of one word."""
    out = np.zeros(0)
    for pcm in pieces:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        k = min(SAMPLE_RATE * ms // 1000, len(x) // 2, len(out))
        if k:
            ramp = np.sin(np.linspace(0, np.pi / 2, k, endpoint=False)) ** 2
            head = out[len(out) - k:] * np.sqrt(1 - ramp) + x[:k] * np.sqrt(ramp)
            out = np.concatenate([out[: len(out) - k], head, x[k:]])
        else:
            out = np.concatenate([out, x])
    return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def beep(ms: int = 300, hz: float = 1000.0, dbfs: float = -12.0) -> bytes:
    """A sine tone (the record beep, and the stand-in for a prompt that is missing)."""
    t = np.arange(SAMPLE_RATE * ms // 1000) / SAMPLE_RATE
    amp = 32768 * 10 ** (dbfs / 20)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return (amp * ramp * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


class PromptLibrary:
    """Prompt id + style -> 8 kHz PCM, all loaded at start so a call never waits for disk or TTS.

    `extra` holds the prompts rendered from data rather than the catalogue (the knowledge base's answers): read
    from their files when played, never synthesised during a call."""

    def __init__(self, catalogue: Catalogue, cache_dir: Path, recorded_dir: Path | None = None,
                 extra: FilePrompts | None = None) -> None:
        self.catalogue = catalogue
        self.extra = extra
        self._audio: dict[tuple[str, str], bytes] = {}
        self._trimmed: dict[tuple[str, str], bytes] = {}
        self._whole: dict[tuple[str, str], bytes] = {}  # counted sentences rendered whole (queue_position_15)
        self.sources: dict[tuple[str, str], Path] = {}  # where each prompt's audio came from
        self.missing: list[str] = []
        for style in STYLES:
            for pid in catalogue.prompts:
                path = recorded_path(recorded_dir, pid, style) if recorded_dir else None
                path = path or cache_dir / style / f"{pid}.wav"
                try:
                    self._audio[(pid, style)] = read_wav(path)
                    self.sources[(pid, style)] = path
                except AudioFormatError:
                    self.missing.append(f"{style}/{pid}")
            for sid, (counted, _) in catalogue.sentences().items():
                path = recorded_path(recorded_dir, sid, style) if recorded_dir else None
                if path is None and pieces_recorded(recorded_dir, counted, style):
                    continue  # the artist's pieces are spliced: one voice
                path = path or cache_dir / style / f"{sid}.wav"
                try:
                    self._whole[(sid, style)] = read_wav(path)
                    self.sources[(sid, style)] = path
                except AudioFormatError:
                    pass  # not rendered (a count outside the built values): said from its pieces
        if self.missing:
            log.warning(
                "%d prompts are not rendered (e.g. %s): run `ivr prompts build`; a tone plays in their place",
                len(self.missing), self.missing[0],
            )

    def get(self, prompt_id: str, style: str = "standard") -> bytes:
        """The prompt's audio; a short tone if it was never rendered (the call goes on). A prompt of `extra`
        that has no file raises PromptError: check `has` first."""
        if prompt_id not in self.catalogue:
            if self.extra is None:
                raise PromptError(f"prompt {prompt_id!r} is not in {self.catalogue.path}")
            audio = self.extra.audio(prompt_id, style)
            if audio is None:
                raise PromptError(f"prompt {prompt_id!r} is not in {self.catalogue.path} nor rendered in "
                                  f"{self.extra.cache_dir}")
            return audio
        return self._audio.get((prompt_id, style)) or self._audio.get((prompt_id, "standard")) or beep(200, 600)

    def text(self, prompt_id: str, style: str = "standard") -> str:
        return self.catalogue[prompt_id].for_style(style)

    def piece(self, prompt_id: str, style: str = "standard") -> bytes:
        """A prompt made ready for joining into sentences: leading and trailing silence cut, levelled to its
        style's level (a recorded piece beside a rendered one is not louder) and faded in and out, so a join
        never clicks."""
        key = (prompt_id, style)
        if prompt_id not in self.catalogue:  # rendered from data: its file may change, so it is not kept
            return self._joinable(self.get(prompt_id, style), style)
        if key not in self._trimmed:
            self._trimmed[key] = self._joinable(self.get(prompt_id, style), style)
        return self._trimmed[key]

    def has(self, prompt_id: str, style: str = "standard") -> bool:
        """Whether the prompt can be played as rendered or recorded (a catalogue prompt always can, as a tone at
        worst; a prompt rendered from data only once its file exists)."""
        if prompt_id in self.catalogue:
            return True
        return self.extra is not None and self.extra.audio(prompt_id, style) is not None

    def whole(self, counted: Counted, style: str = "standard") -> bytes | None:
        """The counted sentence rendered whole for this count and style, ready for joining; None: not rendered."""
        sid = self.catalogue.counted[counted.prompt].sentence_id(counted.n)
        audio = self._whole.get((sid, style))
        if audio is None:
            return None
        if (sid, style) not in self._trimmed:
            self._trimmed[(sid, style)] = self._joinable(audio, style)
        return self._trimmed[(sid, style)]

    @staticmethod
    def _joinable(pcm: bytes, style: str) -> bytes:
        sound = trim_silence(pcm)
        return fade_edges(level_pcm(sound, STYLE_LEVEL_DBFS[style]), JOIN_FADE_MS) if sound else sound

    def compose(self, parts: Sequence[Part], style: str = "standard") -> bytes:
        """Prompts and numbers joined into one prompt: ``[Counted("queue_position", 3), "queue_under_a_minute"]``.

        A counted sentence is played whole when it was rendered for that count, else from its pieces around the
        count; ticket and phone numbers (`Digits`) are read digit by digit in groups with a pause between them,
        counts (`Cardinal`) as numbers. Every piece is already in memory: composing never waits for disk or TTS.
        """
        if len(parts) == 1 and isinstance(parts[0], str):
            return self.get(parts[0], style)  # nothing to join: the prompt as rendered, its pauses kept
        said: list[tuple[bytes, str]] = []  # audio and what it is: prompt, digits or count
        for part in parts:
            if isinstance(part, Counted):
                whole = self.whole(part, style)
                if whole is not None:
                    said.append((whole, "prompt"))
                    continue
                counted = self.catalogue.counted[part.prompt]
                said += [(self.piece(p, style), "prompt") for p in (counted.before,) if p]
                said.append((self._count(Cardinal(part.n, counted.counting), style), "count"))
                said += [(self.piece(p, style), "prompt") for p in (counted.after,) if p]
            elif isinstance(part, Digits):
                groups = [_silence(DIGIT_GAP_MS, style).join(self.piece(p, style) for p in digit_pieces(g))
                          for g in digit_groups(part.value)]
                said.append((_silence(GROUP_GAP_MS, style).join(groups), "digits"))
            elif isinstance(part, Cardinal):
                said.append((self._count(part, style), "count"))
            else:
                said.append((self.piece(part, style), "prompt"))
        out = [said[0][0]] if said else []
        for (_, before), (audio, kind) in zip(said, said[1:]):
            count_in_sentence = "count" in (before, kind) and "digits" not in (before, kind)
            out += [_silence(COUNT_GAP_MS if count_in_sentence else WORD_GAP_MS, style), audio]
        return b"".join(out)

    def _count(self, part: Cardinal, style: str) -> bytes:
        return crossfaded([self.piece(p, style) for p in cardinal_pieces(part.value, part.counting)])
