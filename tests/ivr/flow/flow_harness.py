"""Helpers for runner tests: a fixture-aware fake recogniser and one call through FileChannel."""
from __future__ import annotations

import asyncio
import csv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from asr.audio import FRAME_BYTES, frames, read_wav
from asr.engine import Engine
from asr.load import Admission
from asr.results import Partial, Transcript, Word
from ivr.call import CallRecord, TicketLookup
from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, parse_script
from ivr.kb import KnowledgeBase
from ivr.flow.kbstep import KbStats
from ivr.flow.kbvoice import render_kb
from ivr.flow.model import Flow
from ivr.flow.runner import FlowRunner
from ivr.media.callio import CallIO
from ivr.tickets.sink import StoreSink
from ivr.tickets.store import TicketStore
from prompts.library import PromptLibrary
from prompts.voice_espeak import EspeakVoice

REPO = Path(__file__).resolve().parents[3]
ZH = REPO / "audio_fixtures" / "zh"
FIXTURE_KB = REPO / "tests" / "ivr" / "kb" / "fixture_kb"


def fixture(name: str) -> Path:
    return ZH / f"{name}.wav"


def transcripts() -> dict[str, str]:
    with open(ZH / "transcripts.tsv", encoding="utf-8") as f:
        return {row["id"]: row["text"] for row in csv.DictReader(f, delimiter="\t")}


class _FakeRecognizer:
    def __init__(self, engine: FixtureEngine) -> None:
        self.engine = engine
        self.audio = bytearray()

    def accept(self, pcm: bytes) -> Partial | None:
        self.audio += pcm
        return None

    def final(self) -> Transcript:
        text = self.engine.identify(bytes(self.audio))
        self.audio = bytearray()
        words = tuple(Word(ch, i * 0.2, i * 0.2 + 0.2, 0.9) for i, ch in enumerate(text))
        return Transcript(text, words, engine="fake", model="fixture-transcripts", raw_text=" ".join(text))


class FixtureEngine(Engine):
    """A recogniser that 'hears' the transcript of the fixture whose frames it was fed (a unit-test stand-in for
    a Mandarin model, which cannot be downloaded here). Unknown audio gives an empty transcript."""

    name = "fake"
    model_name = "fixture-transcripts"
    supports_grammar = False

    def __init__(self) -> None:
        text = transcripts()
        self._frames: dict[bytes, set[str]] = {}
        for fid, t in text.items():
            for f in frames(read_wav(fixture(fid))):
                self._frames.setdefault(f, set()).add(t)
        self.heard: list[str] = []

    def identify(self, audio: bytes) -> str:
        votes: Counter[str] = Counter()
        for i in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
            found = self._frames.get(audio[i:i + FRAME_BYTES], set())
            if len(found) == 1:  # frames shared by several recordings (silence) say nothing
                votes.update(found)
        text = votes.most_common(1)[0][0] if votes else ""
        self.heard.append(text)
        return text

    def recognizer(self, phrases: Sequence[str] | None = None) -> _FakeRecognizer:
        return _FakeRecognizer(self)

    def release(self, rec: object) -> None:
        pass


@dataclass
class Call:
    record: CallRecord
    channel: FileChannel
    store: TicketStore
    runner: FlowRunner = field(repr=False)

    @property
    def played(self) -> bytes:
        return bytes(self.channel.played)


def at(hour: int) -> Callable[[], datetime]:
    return lambda: datetime(2026, 11, 25, hour, 30)  # a Wednesday


def rendered_kb(kb: KnowledgeBase, ids: list[str] | None, cache: Path) -> Path:
    """The prompts of `kb`'s entries (those named in `ids`, or all) speakable on the day of `at`, rendered with the
    real espeak-ng into `cache`."""
    entries = tuple(e for e in kb.entries if ids is None or e.id in ids)
    render_kb(KnowledgeBase(entries, kb.directory, kb.digest), at(10)().date(), cache, None, EspeakVoice)
    return cache


def run_call(flow: Flow, library: PromptLibrary, script: str, tmp: Path, *, engine: Engine | None = None,
             caller: str = "13800138000", elderly_numbers: frozenset[str] = frozenset(),
             clock: Callable[[], datetime] = at(10), lookup: TicketLookup | None = None,
             store: TicketStore | None = None, idle_hangup_ms: int = 60_000, kb: KnowledgeBase | None = None,
             kb_stats: KbStats | None = None, admission: Admission | None = None) -> Call:
    channel = FileChannel(parse_script(script), CallInfo(call_id="t-1", caller=caller),
                          idle_hangup_ms=idle_hangup_ms)
    store = store or TicketStore(f"sqlite:///{tmp}/ivr.db")
    sink = StoreSink(store, tmp / "recordings")
    runner = FlowRunner(flow, CallIO(channel, engine, admission=admission), library, sink, elderly_numbers,
                        clock=clock, ticket_lookup=lookup, kb=kb, kb_stats=kb_stats)
    record = asyncio.run(runner.run())
    return Call(record, channel, store, runner)


def count(haystack: bytes, pcm: bytes, probe_ms: int = 400) -> int:
    """How many times the start of a prompt was played."""
    start = next((i for i in range(0, len(pcm), 2) if pcm[i:i + 2] != b"\x00\x00"), 0) & ~1
    probe = pcm[start: start + 16 * probe_ms]  # from the first sound: prompts begin with silence
    return haystack.count(probe)


class ScriptedEngine(FixtureEngine):
    """A recogniser that hears the given Mandarin transcripts, one per utterance in order, whatever was said: the
    flow under test gets recogniser-like text (misheard words included) that no fixture recording carries."""

    model_name = "scripted-transcripts"

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.heard = []

    def identify(self, audio: bytes) -> str:
        text = self.texts.pop(0) if self.texts else ""
        self.heard.append(text)
        return text
