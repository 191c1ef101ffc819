"""Typed recognition results."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Word", "Alternative", "Partial", "Transcript"]


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the utterance audio
    end: float
    conf: float  # 0..1


@dataclass(frozen=True)
class Alternative:
    text: str
    confidence: float


@dataclass(frozen=True)
class Partial:
    text: str


@dataclass(frozen=True)
class Transcript:
    """The final result for one utterance."""

    text: str  # the recogniser's words joined as written text (no spaces between Chinese words)
    words: tuple[Word, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    engine: str = ""
    model: str = ""
    audio_ms: int = 0
    raw_text: str = ""  # the recogniser's own text, words separated by spaces
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        """Mean word confidence (0 when nothing was recognised)."""
        return sum(w.conf for w in self.words) / len(self.words) if self.words else 0.0

    @property
    def empty(self) -> bool:
        return not self.text.strip()

    def low_confidence_words(self, threshold: float = 0.6) -> list[Word]:
        return [w for w in self.words if w.conf < threshold]

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "raw_text": self.raw_text,
            "confidence": round(self.confidence, 4),
            "engine": self.engine,
            "model": self.model,
            "audio_ms": self.audio_ms,
            "words": [
                {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3), "conf": round(w.conf, 4)}
                for w in self.words
            ],
            "alternatives": [{"text": a.text, "confidence": a.confidence} for a in self.alternatives],
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(
            text=d.get("text", ""),
            raw_text=d.get("raw_text", ""),
            engine=d.get("engine", ""),
            model=d.get("model", ""),
            audio_ms=int(d.get("audio_ms", 0)),
            words=tuple(Word(w["word"], w["start"], w["end"], w["conf"]) for w in d.get("words", [])),
            alternatives=tuple(Alternative(a["text"], a["confidence"]) for a in d.get("alternatives", [])),
            extra={str(k): str(v) for k, v in d.get("extra", {}).items()},
        )
