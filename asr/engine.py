"""Recogniser interface and the Vosk engine.

One `vosk.Model` per model directory per process, shared by every call. Recognisers are pooled: a fresh Kaldi
recogniser is several times slower than one that has decoded before (its look-ahead graph cache starts empty),
so finished recognisers are reset and reused instead of thrown away.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from asr.audio import SAMPLE_RATE
from asr.resample import make_upsampler
from asr.results import Alternative, Partial, Transcript, Word

__all__ = [
    "Recognizer", "Engine", "VoskEngine", "EngineError", "ModelLoadError", "join_words", "model_sample_rate",
    "supports_grammar",
]

log = logging.getLogger(__name__)


class EngineError(Exception):
    """Base of the engine's errors."""


class ModelLoadError(EngineError):
    """The model directory could not be loaded by Vosk."""


class Recognizer(Protocol):
    def accept(self, pcm: bytes) -> Partial | None:
        """Feed 8 kHz PCM16; return a partial result when the text so far changed."""

    def final(self) -> Transcript:
        """End the utterance and return its transcript; the recogniser may then be reused."""


class Engine(Protocol):
    name: str
    model_name: str
    supports_grammar: bool

    def recognizer(self, phrases: Sequence[str] | None = None) -> Recognizer: ...

    def release(self, rec: Recognizer) -> None: ...


def join_words(words: Sequence[str]) -> str:
    """Join recogniser words: no space between CJK words, one space between Latin words."""
    out = ""
    for w in words:
        if out and _is_latin(out[-1]) and _is_latin(w[0]):
            out += " "
        out += w
    return out


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def model_sample_rate(model_dir: Path) -> int:
    """The rate the model's features expect (conf/mfcc.conf --sample-frequency), 16000 if not stated."""
    conf = model_dir / "conf" / "mfcc.conf"
    if conf.is_file():
        for line in conf.read_text().splitlines():
            if line.strip().startswith("--sample-frequency="):
                return int(float(line.split("=", 1)[1]))
    return 16000


def supports_grammar(model_dir: Path) -> bool:
    """Models built for look-ahead decoding (HCLr.fst + Gr.fst) accept run-time phrase lists; HCLG ones do not."""
    g = model_dir / "graph"
    return (g / "HCLr.fst").is_file() and (g / "Gr.fst").is_file()


_models: dict[Path, object] = {}
_models_lock = threading.Lock()


def _load_model(path: Path) -> object:
    import vosk

    with _models_lock:
        if path not in _models:
            vosk.SetLogLevel(-2)
            try:
                _models[path] = vosk.Model(str(path))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise ModelLoadError(f"{path}: Vosk could not load this model ({exc})") from None
            log.info("loaded Vosk model %s", path)
        return _models[path]


class VoskRecognizer:
    """One utterance at a time on a Kaldi recogniser; reusable after `final()`."""

    def __init__(self, engine: "VoskEngine", phrases: Sequence[str] | None) -> None:
        import vosk

        self.engine = engine
        self.phrases = tuple(phrases) if phrases else None
        rate = SAMPLE_RATE if engine.resampler == "vosk" else engine.sample_rate
        if self.phrases:
            self._rec = vosk.KaldiRecognizer(engine.model, rate, json.dumps(list(self.phrases), ensure_ascii=False))
        else:
            self._rec = vosk.KaldiRecognizer(engine.model, rate)
        self._rec.SetWords(True)
        if engine.max_alternatives:
            self._rec.SetMaxAlternatives(engine.max_alternatives)
        self._up = make_upsampler(engine.resampler)
        self._partial = ""
        self._samples = 0
        self._segments: list[dict] = []  # results Vosk finalised on its own mid-utterance

    def accept(self, pcm: bytes) -> Partial | None:
        self._samples += len(pcm) // 2
        data = self._up.process(pcm) if self._up else pcm
        if self._rec.AcceptWaveform(data):
            self._segments.append(json.loads(self._rec.Result()))
            self._partial = ""
            return None
        text = json.loads(self._rec.PartialResult()).get("partial", "")
        if text != self._partial:
            self._partial = text
            return Partial(join_words(text.split()))
        return None

    def final(self) -> Transcript:
        self._segments.append(json.loads(self._rec.FinalResult()))
        words: list[Word] = []
        alternatives: list[Alternative] = []
        for seg in self._segments:
            if "alternatives" in seg:
                alts = seg["alternatives"]
                if alts:
                    best = alts[0]
                    words += [Word(w["word"], w["start"], w["end"], 1.0) for w in best.get("result", [])]
                    alternatives += [Alternative(join_words(a["text"].split()), a["confidence"]) for a in alts[1:]]
            else:
                words += [Word(w["word"], w["start"], w["end"], w["conf"]) for w in seg.get("result", [])]
        raw = " ".join(w.text for w in words)
        result = Transcript(
            text=join_words([w.text for w in words]),
            words=tuple(words),
            alternatives=tuple(alternatives),
            engine="vosk",
            model=self.engine.model_name,
            audio_ms=self._samples * 1000 // SAMPLE_RATE,
            raw_text=raw,
        )
        self._rec.Reset()
        self._segments = []
        self._partial = ""
        self._samples = 0
        self._up = make_upsampler(self.engine.resampler)
        return result


class VoskEngine:
    """A Vosk model shared by every call, with a pool of reusable recognisers."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, *, resampler: str = "vosk", max_alternatives: int = 0,
                 pool_size: int = 64) -> None:
        self.model_dir = Path(model_dir).resolve()
        if not self.model_dir.is_dir():
            raise ModelLoadError(f"{self.model_dir}: no such model directory")
        self.model_name = self.model_dir.name if self.model_dir.name != "model" else self.model_dir.parent.name
        self.resampler = resampler
        make_upsampler(resampler)  # validates the name
        self.max_alternatives = max_alternatives
        self.sample_rate = model_sample_rate(self.model_dir)
        self.supports_grammar = supports_grammar(self.model_dir)
        self.model = _load_model(self.model_dir)
        self._pool: list[VoskRecognizer] = []
        self._pool_size = pool_size
        self._lock = threading.Lock()

    def recognizer(self, phrases: Sequence[str] | None = None) -> VoskRecognizer:
        """A recogniser for one utterance; a phrase list is used only when the model supports grammars."""
        if phrases and self.supports_grammar:
            return VoskRecognizer(self, phrases)
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return VoskRecognizer(self, None)

    def release(self, rec: VoskRecognizer) -> None:
        """Return a recogniser after `final()` so the next utterance starts warm."""
        if rec.phrases is not None:
            return
        with self._lock:
            if len(self._pool) < self._pool_size:
                self._pool.append(rec)

    def warm(self, pcm: bytes, count: int = 1) -> None:
        """Decode `pcm` (speech, e.g. a prompt) on `count` recognisers and pool them, so first callers do not wait."""
        recs = [self.recognizer() for _ in range(count)]
        for rec in recs:
            rec.accept(pcm)
            rec.final()
            self.release(rec)
