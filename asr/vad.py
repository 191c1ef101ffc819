"""Voice-activity detection and endpointing for 8 kHz telephone frames.

Two layers, pipecat-style:

- `VadAnalyser`: per frame, is this speech? webrtcvad gated by an energy test against a noise floor (minimum
  statistics over the last ~2 s), because webrtcvad calls steady line noise speech. Pure and cheap.
- `Endpointer`: the four-state machine (quiet, starting, speaking, stopping) with start delay, hang-over, pre-roll,
  maximum utterance length, no-input time-out and barge-in, emitting typed events. Settings come per prompt in a
  `VadConfig`; time is counted in frames, never read from a clock. Of a pause inside the hang-over only the first
  `tail_ms` is passed on at once: the rest is held and passed on only if speech resumes, so a recogniser does not
  decode the silence that ends every utterance (bench/asr_streams.py: decoding it cost about half as much CPU per
  second as speech) and has nothing left to catch up on when the endpointer fires.
"""
from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import warnings

import numpy as np
import webrtcvad

with warnings.catch_warnings():  # stdlib up to 3.12 (deprecated): 60x faster than numpy on a 160-sample frame
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop as _audioop
    except ImportError:  # Python 3.13+
        _audioop = None  # type: ignore[assignment]

from asr.audio import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from asr.errors import AudioFormatError, VadConfigError

__all__ = [
    "VadConfig", "VadState", "VadAnalyser", "Endpointer",
    "VadEvent", "SpeechStart", "SpeechAudio", "BargeIn", "SpeechEnd", "NoInput",
]


@dataclass(frozen=True)
class VadConfig:
    """Endpointing settings; every prompt may carry its own."""

    mode: int = 2  # webrtcvad aggressiveness 0..3
    start_ms: int = 100  # voiced time needed before an utterance counts as started
    stop_ms: int = 800  # unvoiced time that ends an utterance (hang-over)
    tail_ms: int = 200  # of a pause, only this much is passed on at once; the rest only if speech resumes
    preroll_ms: int = 300  # audio kept from before the start, so the first syllable is not cut
    max_utterance_ms: int = 30_000
    no_input_ms: int = 5_000  # nothing said for this long after listening began (0: never)
    barge_in_ms: int = 240  # voiced time before speech interrupts a prompt (coughs and clicks are shorter)
    energy_margin_db: float = 9.0  # a voiced frame must stand this far above the noise floor
    min_energy_dbfs: float = -50.0  # and above this absolute level
    noise_window_ms: int = 2_000

    def __post_init__(self) -> None:
        if self.mode not in (0, 1, 2, 3):
            raise VadConfigError(f"VadConfig.mode must be 0..3, not {self.mode}")
        for name in ("start_ms", "stop_ms", "tail_ms", "preroll_ms", "max_utterance_ms", "no_input_ms", "barge_in_ms"):
            value = getattr(self, name)
            if value < 0 or value % FRAME_MS:
                raise VadConfigError(f"VadConfig.{name} must be a non-negative multiple of {FRAME_MS} ms, not {value}")

    @staticmethod
    def frames(ms: int) -> int:
        return ms // FRAME_MS


class VadState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


def frame_dbfs(frame: bytes) -> float:
    """RMS level of a PCM16 frame in dB relative to full scale (-120 for digital silence)."""
    if _audioop is not None:
        rms = float(_audioop.rms(frame, 2))
    else:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        rms = math.sqrt(float(samples.dot(samples)) / len(samples)) if len(samples) else 0.0
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -120.0


class VadAnalyser:
    """Decides per 20 ms frame whether it is speech: webrtcvad and an adaptive energy gate."""

    def __init__(self, config: VadConfig) -> None:
        self.config = config
        self._vad = webrtcvad.Vad(config.mode)
        self._window = max(1, config.noise_window_ms // FRAME_MS)
        self._n = 0
        self._minima: deque[tuple[int, float]] = deque()  # sliding minimum: (frame index, energy), rising

    @property
    def noise_floor_dbfs(self) -> float:
        """The quietest frame's level over the noise window (minimum statistics)."""
        return self._minima[0][1] if self._minima else self.config.min_energy_dbfs

    def is_speech(self, frame: bytes) -> bool:
        if len(frame) != FRAME_BYTES:
            raise AudioFormatError(f"a frame must be {FRAME_BYTES} bytes (20 ms at 8 kHz), not {len(frame)}")
        energy = frame_dbfs(frame)
        minima = self._minima
        while minima and minima[-1][1] >= energy:
            minima.pop()
        minima.append((self._n, energy))
        if minima[0][0] <= self._n - self._window:
            minima.popleft()
        self._n += 1
        threshold = max(self.config.min_energy_dbfs, self.noise_floor_dbfs + self.config.energy_margin_db)
        if energy < threshold:
            return False
        return bool(self._vad.is_speech(frame, SAMPLE_RATE))


@dataclass(frozen=True)
class VadEvent:
    t_ms: int  # time of the event, from the start of listening


@dataclass(frozen=True)
class SpeechStart(VadEvent):
    audio: bytes  # pre-roll plus the frames that confirmed the start; feed it to the recogniser first


@dataclass(frozen=True)
class SpeechAudio(VadEvent):
    """Audio inside the utterance, starting at `t_ms`: one frame, or, when speech resumes after a pause longer
    than `VadConfig.tail_ms`, the held-back rest of the pause followed by the new voiced frame."""

    audio: bytes


@dataclass(frozen=True)
class BargeIn(VadEvent):
    """Speech has lasted long enough to interrupt a prompt (emitted once per utterance)."""


@dataclass(frozen=True)
class SpeechEnd(VadEvent):
    start_ms: int  # where the utterance's audio begins (pre-roll included)
    reason: str  # "silence" or "max_length"


@dataclass(frozen=True)
class NoInput(VadEvent):
    """Nothing was said within the no-input time-out."""


class Endpointer:
    """Turns frames into utterance events with the four-state machine."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self.analyser = VadAnalyser(self.config)
        self.state = VadState.QUIET
        self._t = 0
        self._preroll: deque[bytes] = deque(maxlen=max(1, self.config.frames(self.config.preroll_ms)))
        self._pending: list[bytes] = []  # frames while STARTING
        self._voiced = 0  # voiced frames in the current start attempt / utterance
        self._unvoiced = 0  # consecutive unvoiced frames while STOPPING
        self._held: list[bytes] = []  # pause frames beyond tail_ms, passed on only if speech resumes
        self._utt_frames = 0
        self._utt_start = 0
        self._start_t = 0
        self._barged = False
        self._heard_speech = False
        self._no_input_sent = False

    def process(self, frame: bytes) -> list[VadEvent]:
        """Analyse one frame; return the events it causes (usually none)."""
        cfg = self.config
        t = self._t
        self._t += FRAME_MS
        voiced = self.analyser.is_speech(frame)
        events: list[VadEvent] = []
        if self.state is VadState.QUIET:
            if voiced:
                self.state = VadState.STARTING
                self._pending = [frame]
                self._voiced = 1
                self._start_t = t
                self._barged = False
            else:
                self._preroll.append(frame)
        elif self.state is VadState.STARTING:
            self._pending.append(frame)
            if voiced:
                self._voiced += 1
            elif len(self._pending) - self._voiced > max(1, self._voiced):
                # a click or cough: too much silence inside the start attempt; go back to quiet
                for f in self._pending:
                    self._preroll.append(f)
                self._pending = []
                self.state = VadState.QUIET
            if self.state is VadState.STARTING and self._voiced >= max(1, cfg.frames(cfg.start_ms)):
                audio = b"".join(self._preroll) + b"".join(self._pending)
                self._utt_start = self._start_t - len(self._preroll) * FRAME_MS
                self._utt_frames = len(self._preroll) + len(self._pending)
                self._preroll.clear()
                self._pending = []
                self._unvoiced = 0
                self._heard_speech = True
                self.state = VadState.SPEAKING
                events.append(SpeechStart(self._start_t, audio))
        else:
            self._utt_frames += 1
            if voiced:
                events.append(self._resume(t, frame))
                self._voiced += 1
                self._unvoiced = 0
                self.state = VadState.SPEAKING
            else:
                self._unvoiced += 1
                self.state = VadState.STOPPING
                if self._unvoiced <= cfg.frames(cfg.tail_ms):
                    events.append(SpeechAudio(t, frame))
                else:  # a recogniser would only decode silence: hold it until speech resumes or the end drops it
                    self._held.append(frame)
            if self._unvoiced >= max(1, cfg.frames(cfg.stop_ms)):
                events.append(SpeechEnd(t + FRAME_MS, self._utt_start, "silence"))
                self._reset_utterance()
            elif self._utt_frames * FRAME_MS >= cfg.max_utterance_ms:
                if self._held:
                    events.append(self._resume(t + FRAME_MS, b""))
                events.append(SpeechEnd(t + FRAME_MS, self._utt_start, "max_length"))
                self._reset_utterance()
        if (
            not self._barged
            and self.state in (VadState.SPEAKING, VadState.STOPPING, VadState.STARTING)
            and self._voiced >= max(1, cfg.frames(cfg.barge_in_ms))
        ):
            self._barged = True
            events.append(BargeIn(t))
        if (
            cfg.no_input_ms
            and not self._heard_speech
            and not self._no_input_sent
            and self.state is VadState.QUIET
            and self._t >= cfg.no_input_ms
        ):
            self._no_input_sent = True
            events.append(NoInput(self._t))
        return events

    def _resume(self, t: int, frame: bytes) -> SpeechAudio:
        """The held pause (if any) and `frame` as one event starting where the held audio began."""
        held = self._held
        self._held = []
        return SpeechAudio(t - len(held) * FRAME_MS, b"".join(held) + frame)

    def _reset_utterance(self) -> None:
        self._held = []
        self.state = VadState.QUIET
        self._voiced = 0
        self._unvoiced = 0
        self._utt_frames = 0
