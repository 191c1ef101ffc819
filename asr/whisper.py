"""The Whisper engine (faster-whisper on CTranslate2) behind the `Engine`/`Recognizer` protocol.

Whisper reads a whole utterance at once, so its recogniser buffers the 8 kHz audio it is fed and transcribes it at
`final()` (no partial results): it is the engine of the second pass over recordings, and of menus where time is
virtual (`ivr simulate`). Language fixed to Mandarin, CPU int8 by default (a GPU when CTranslate2 sees one).

Whisper's known failure modes are guarded against, and each guard that acted is named in `Transcript.extra["guards"]`
(so the ticket says what was dropped):

- audio shorter than `min_audio_ms`, or with no sound above `silence_dbfs`, is not decoded at all (Whisper invents
  text for silence: subtitles credits, "thank you for watching");
- the decode is capped (`max_new_tokens`, from the audio's length) and a phrase repeated in a loop is cut back to
  one occurrence;
- a segment Whisper itself thinks holds no speech (`no_speech_prob` >= `no_speech_max`) is dropped, and so is a
  segment that is one of the phrases Whisper is known to hallucinate on silence;
- a segment that echoes the `initial_prompt` back (what Whisper returns for short audio when given one) is dropped;
- words Whisper adds after the speech are dropped: a segment's tail that its word alignment squeezes into no time
  (and the barely-sure words just before it), which is how a continuation invented past the end of the audio shows.
"""
from __future__ import annotations

import difflib
import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import FRAME_BYTES, SAMPLE_RATE
from asr.engine import Recognizer
from asr.errors import EngineError, ModelLoadError
from asr.model_files import whisper_model_problem
from asr.resample import make_upsampler
from asr.results import Partial, Transcript, Word
from asr.text import normalize

__all__ = ["WhisperOptions", "WhisperEngine", "WhisperRecognizer", "Segment", "guard_segments", "collapse_loops",
           "untimed_tail", "whisper_model_problem", "loudest_frame_dbfs", "speech_chunks", "KNOWN_HALLUCINATIONS"]

log = logging.getLogger(__name__)

MODEL_RATE = 16_000

KNOWN_HALLUCINATIONS = (
    "字幕由amara.org社区提供", "请不吝点赞订阅转发打赏支持明镜与点点栏目", "谢谢观看", "谢谢大家观看", "感谢观看",
    "谢谢收看", "请订阅", "点赞订阅", "优优独播剧场", "中文字幕", "字幕", "字幕志愿者",
)
"""Text Whisper is known to produce for silence or noise (its training subtitles' credits); compared without
punctuation, spaces or case."""

_PUNCT = re.compile(r"[\ufffd\s\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65!-/:-@\[-`{-~…—·]+")


@dataclass(frozen=True)
class WhisperOptions:
    """How a Whisper recogniser decodes and which guards it applies (see the module's docstring)."""

    beam_size: int = 5
    initial_prompt: str | None = None
    min_audio_ms: int = 200
    silence_dbfs: float = -50.0  # the loudest 20 ms must be above this (speech on a line is around -20)
    no_speech_max: float = 0.6  # a segment Whisper thinks holds no speech ...
    no_speech_logprob: float = -0.8  # ... and whose tokens it is not sure of (Whisper's own pairing) is dropped
    unsure_logprob: float = -1.2  # a segment whose tokens average below this is dropped whatever the rest says
    tokens_per_s: float = 20.0  # Mandarin is read at 4-5 characters a second, one to three tokens each, timestamps
    min_tokens: int = 32
    max_repeats: int = 2  # a unit said more than this many times in a row is a loop
    tail_unsure: float = 0.1  # beside an untimed tail, a word below this probability is part of it


@dataclass(frozen=True)
class Segment:
    """One decoded segment as the guards see it."""

    text: str
    words: tuple[Word, ...]
    no_speech_prob: float
    compression_ratio: float = 0.0
    avg_logprob: float = 0.0


@dataclass
class _Guarded:
    segments: list[Segment]
    notes: list[str] = field(default_factory=list)


def _bare(text: str) -> str:
    return _PUNCT.sub("", text).lower()


def collapse_loops(words: Sequence[Word], max_repeats: int = 2, longest_unit: int = 8) -> tuple[list[Word], int]:
    """`words` with every run of a unit (1..`longest_unit` words) repeated more than `max_repeats` times in a row
    cut back to one occurrence; also returns how many words were cut."""
    out = list(words)
    cut = 0
    i = 0
    while i < len(out):
        for size in range(1, longest_unit + 1):
            unit = [w.text for w in out[i:i + size]]
            if len(unit) < size:
                break
            n = 1
            while [w.text for w in out[i + n * size:i + (n + 1) * size]] == unit:
                n += 1
            if n > max_repeats:
                del out[i + size:i + n * size]
                cut += (n - 1) * size
                break
        i += 1
    return out, cut


def untimed_tail(words: Sequence[Word], unsure: float = 0.1) -> int:
    """How many words at the end of a segment Whisper invented past the speech: a tail of words given no time by the
    alignment, with the words below `unsure` probability just before it (0 when the last word has a duration)."""
    n = 0
    while n < len(words) and words[-1 - n].end <= words[-1 - n].start:
        n += 1
    if not n:
        return 0
    while n < len(words) and words[-1 - n].conf < unsure:
        n += 1
    return n


def _echoes(text: str, prompt: str) -> bool:
    """Whether a segment is the prompt given back: most of the prompt, not a short answer that is one of its words."""
    seg, pr = _bare(text), _bare(prompt)
    if len(seg) < 4 or not pr:
        return False
    if pr.startswith(seg[:4]) or pr in seg:
        return True
    matcher = difflib.SequenceMatcher(None, seg, pr, autojunk=False)
    # pieces of the prompt, in its order, making most of the segment and half the prompt: 询询进度或人工服务
    # (a loop's leftover, then the prompt's tail) echoes 请说投诉咨询查询进度或人工服务; 查询进度 alone answers it
    echoed = sum(b.size for b in matcher.get_matching_blocks() if b.size >= 3)
    return (echoed >= len(seg) * 0.75 and echoed >= len(pr) * 0.5) or matcher.ratio() >= 0.8


def guard_segments(segments: Sequence[Segment], options: WhisperOptions) -> _Guarded:
    """The segments to keep and a note per guard that acted (a pure function of the decoder's output)."""
    kept: list[Segment] = []
    notes: list[str] = []
    hallucinated = {_bare(h) for h in KNOWN_HALLUCINATIONS}
    for seg in segments:
        words, cut = collapse_loops(seg.words, options.max_repeats)
        invented = untimed_tail(words, options.tail_unsure)
        if invented:
            notes.append(f"dropped {''.join(w.text for w in words[-invented:])!r}: words in no time after the speech")
            words = words[:-invented]
        text = "".join(w.text for w in words) if seg.words else seg.text
        bare = _bare(text)
        if not bare:
            continue
        if seg.no_speech_prob >= options.no_speech_max and seg.avg_logprob < options.no_speech_logprob:
            notes.append(f"dropped {text!r}: no speech {seg.no_speech_prob:.2f}")
        elif seg.avg_logprob < options.unsure_logprob:
            notes.append(f"dropped {text!r}: unsure (mean log-probability {seg.avg_logprob:.2f})")
        elif bare in hallucinated:
            notes.append(f"dropped {text!r}: a known hallucination")
        elif options.initial_prompt and _echoes(text, options.initial_prompt):
            notes.append(f"dropped {text!r}: the initial prompt echoed")
        else:
            if cut:
                notes.append(f"cut a repetition loop of {cut} words")
            kept.append(Segment(text, tuple(words), seg.no_speech_prob, seg.compression_ratio, seg.avg_logprob))
    return _Guarded(kept, notes)


def loudest_frame_dbfs(pcm: bytes) -> float:
    """The RMS level of the loudest 20 ms frame of 8 kHz PCM16, in dBFS (-96 for digital silence)."""
    samples = np.frombuffer(pcm[:len(pcm) // FRAME_BYTES * FRAME_BYTES], dtype="<i2").astype(np.float64)
    if not len(samples):
        return -96.0
    power = (samples.reshape(-1, FRAME_BYTES // 2) ** 2).mean(axis=1).max()
    return max(-96.0, 10 * math.log10(max(power, 1e-12) / 32768**2))


def speech_chunks(pcm: bytes, *, max_s: float = 10.0, min_s: float = 2.0, gap_ms: int = 300,
                  quiet_db: float = 35.0) -> list[bytes]:
    """8 kHz PCM16 cut at its pauses (`gap_ms` of 20 ms frames `quiet_db` below the loudest, cut in the middle)
    into pieces of `min_s` to `max_s` (a longer stretch without a pause is cut where it is full). Whisper base,
    given two sentences in one window, often writes the first and skips the second: each is decoded on its own."""
    n = len(pcm) // FRAME_BYTES
    if not pcm:
        return []
    if n == 0:
        return [pcm]
    x = np.frombuffer(pcm[:n * FRAME_BYTES], dtype="<i2").astype(np.float64).reshape(n, -1)
    level = 10 * np.log10(np.maximum((x ** 2).mean(axis=1), 1.0))
    quiet = level < level.max() - quiet_db
    need, shortest, longest = gap_ms // 20, int(min_s * 50), int(max_s * 50)
    cuts: list[int] = []  # frame indexes at the middle of each pause
    run = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run >= need and (i + 1 == n or not quiet[i + 1]):
            cuts.append(i - run // 2)
    bounds = [0]
    for c in cuts + [n]:
        while c - bounds[-1] > longest:  # no pause for too long: cut where the piece is full
            bounds.append(bounds[-1] + longest)
        if c - bounds[-1] >= shortest or c == n:
            bounds.append(c)
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < shortest:  # a short tail joins the piece before it
        del bounds[-2]
    pieces = [pcm[a * FRAME_BYTES:b * FRAME_BYTES] for a, b in zip(bounds, bounds[1:]) if b > a]
    pieces[-1] += pcm[n * FRAME_BYTES:]
    return pieces


def _simplifier() -> Callable[[str], str]:
    try:
        from opencc import OpenCC
    except ImportError:
        log.warning("opencc is not installed: Whisper's traditional characters are kept as they are")
        return lambda s: s
    convert: Callable[[str], str] = OpenCC("t2s").convert
    return convert


_models: dict[tuple[Path, str, str, int], Any] = {}
_models_lock = threading.Lock()


def _load(folder: Path, device: str, compute_type: str, cpu_threads: int) -> Any:
    key = (folder, device, compute_type, cpu_threads)
    with _models_lock:
        if key not in _models:
            try:
                from faster_whisper import WhisperModel
            except ImportError:
                raise EngineError("the Whisper engine needs faster-whisper: pip install -e '.[whisper]'") from None
            try:
                _models[key] = WhisperModel(str(folder), device=device, compute_type=compute_type,
                                            cpu_threads=cpu_threads)
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelLoadError(f"{folder}: faster-whisper could not load this model ({exc})") from None
            log.info("loaded Whisper model %s (%s, %s)", folder, device, compute_type)
        return _models[key]


def _device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except (ImportError, RuntimeError):
        return "cpu"


class WhisperRecognizer:
    """Buffers one utterance and transcribes it at `final()`; reusable after it."""

    def __init__(self, engine: WhisperEngine) -> None:
        self.engine = engine
        self._pcm = bytearray()

    def accept(self, pcm: bytes) -> Partial | None:
        self._pcm += pcm
        return None

    def final(self) -> Transcript:
        pcm, self._pcm = bytes(self._pcm), bytearray()
        return self.engine.transcribe(pcm)


class WhisperEngine:
    """One faster-whisper model shared by every recogniser of the process (see the module's docstring).

    `device` "auto" takes a GPU when CTranslate2 sees one; `compute_type` "auto" is int8 on the CPU and
    int8_float16 on a GPU."""

    name = "whisper"
    supports_grammar = False

    def __init__(self, model_dir: str | Path, *, device: str = "auto", compute_type: str = "auto",
                 cpu_threads: int = 0, options: WhisperOptions | None = None) -> None:
        self.model_dir = Path(model_dir)
        problem = whisper_model_problem(self.model_dir)
        if problem:
            raise ModelLoadError(problem)
        self.model_name = self.model_dir.name
        self.device = _device(device)
        self.compute_type = compute_type if compute_type != "auto" else (
            "int8" if self.device == "cpu" else "int8_float16")
        self.options = options or WhisperOptions()
        self.model = _load(self.model_dir, self.device, self.compute_type, cpu_threads)
        self._simplify = _simplifier()

    def recognizer(self, phrases: Sequence[str] | None = None) -> WhisperRecognizer:
        """A recogniser for one utterance (phrase lists are not used: Whisper has no grammars)."""
        return WhisperRecognizer(self)

    def release(self, rec: Recognizer) -> None:
        """Nothing to pool: a Whisper recogniser is only a buffer."""

    def transcribe(self, pcm: bytes) -> Transcript:
        """The transcript of one utterance or recording of 8 kHz PCM16, with the guards applied."""
        audio_ms = len(pcm) // 2 * 1000 // SAMPLE_RATE
        opts = self.options
        if audio_ms < opts.min_audio_ms:
            return self._result([], audio_ms, [f"not decoded: {audio_ms} ms of audio is too short"])
        level = loudest_frame_dbfs(pcm)
        if level < opts.silence_dbfs:
            return self._result([], audio_ms, [f"not decoded: silence (loudest 20 ms at {level:.0f} dBFS)"])
        decoded: list[Segment] = []
        offset = 0.0
        for piece in speech_chunks(pcm):
            decoded += self._decode(piece, offset)
            offset += len(piece) / 2 / SAMPLE_RATE
        guarded = guard_segments(decoded, opts)
        return self._result(guarded.segments, audio_ms, guarded.notes)

    def _decode(self, pcm: bytes, offset: float) -> list[Segment]:
        opts = self.options
        up = make_upsampler("sinc", MODEL_RATE // SAMPLE_RATE)
        assert up is not None
        audio = np.frombuffer(up.process(pcm), dtype="<i2").astype(np.float32) / 32768
        window_s = min(len(pcm) / 2 / SAMPLE_RATE, 30.0)
        segments, _info = self.model.transcribe(
            audio, language="zh", task="transcribe", beam_size=opts.beam_size, word_timestamps=True,
            initial_prompt=opts.initial_prompt, condition_on_previous_text=False, vad_filter=False,
            temperature=(0.0, 0.2, 0.4), compression_ratio_threshold=2.4, no_speech_threshold=opts.no_speech_max,
            max_new_tokens=max(opts.min_tokens, int(window_s * opts.tokens_per_s)), without_timestamps=False)
        return [Segment(s.text, tuple(self._words(s.words or (), offset)), float(s.no_speech_prob),
                        float(s.compression_ratio), float(s.avg_logprob)) for s in segments]

    def _words(self, words: Sequence[Any], offset: float) -> list[Word]:
        out = []
        for w in words:
            text = _PUNCT.sub("", self._simplify(w.word))
            if text:
                out.append(Word(text, round(offset + float(w.start), 3), round(offset + float(w.end), 3),
                                round(float(w.probability), 4)))
        return out

    def _result(self, segments: Sequence[Segment], audio_ms: int, notes: list[str]) -> Transcript:
        words = [w for s in segments for w in s.words]
        for note in notes:
            log.info("whisper guard: %s", note)
        return Transcript(
            text=normalize(["".join(w.text for w in words)]).text,
            words=tuple(words),
            engine=self.name,
            model=self.model_name,
            audio_ms=audio_ms,
            raw_text=" ".join(w.text for w in words),
            extra={"guards": "; ".join(notes)} if notes else {},
        )
