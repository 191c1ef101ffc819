"""CallIO over FileChannel: barge-in by key and speech, type-ahead, listening for digits, no-input."""
from __future__ import annotations

import asyncio
from pathlib import Path

from asr.audio import read_wav
from asr.vad import VadConfig
from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, parse_script
from ivr.media.callio import CallIO
from prompts.library import beep

REPO = Path(__file__).resolve().parents[3]
M01 = REPO / "audio_fixtures" / "zh" / "m01.wav"
PROMPT = beep(3000, 500, -20)


def io_for(script: str) -> CallIO:
    return CallIO(FileChannel(parse_script(script), CallInfo("m-1", "13800000000")), engine=None)


def test_prompt_plays_to_the_end_without_input() -> None:
    io = io_for("")
    assert asyncio.run(io.play(PROMPT)) is None
    assert bytes(io.channel.played) == PROMPT  # whole frames: 3000 ms


def test_key_barges_in_and_is_kept_for_the_next_listen() -> None:
    io = io_for("!wait:1000; !keys:5")

    async def go():
        return await io.play(PROMPT), io.next_key(), await io.listen()

    how, pending, heard = asyncio.run(go())
    assert how == "dtmf" and pending == "5"
    assert heard.kind == "dtmf" and heard.digits == "5"
    assert len(io.channel.played) < len(PROMPT)


def test_keys_during_a_non_interruptible_prompt_are_type_ahead() -> None:
    io = io_for("!wait:500; !keys:*1")

    async def go():
        return await io.play(PROMPT, interruptible=False), io.take_key(), io.next_key()

    assert asyncio.run(go()) == (None, "*", "1")
    assert bytes(io.channel.played) == PROMPT


def test_speech_barges_in_and_the_utterance_is_kept() -> None:
    io = io_for(f"!wait:500; !say:{M01}")

    async def go():
        return await io.play(PROMPT), await io.listen()

    how, heard = asyncio.run(go())
    assert how == "speech" and heard.kind == "speech"
    # the utterance holds the caller's whole word, from before the barge-in was declared
    assert len(heard.audio) >= len(read_wav(M01)) * 0.6


def test_listen_collects_digits_until_the_terminator() -> None:
    io = io_for("keys:2026#")
    heard = asyncio.run(io.listen(max_digits=14, terminator="#"))
    assert (heard.kind, heard.digits, heard.terminated) == ("dtmf", "2026", True)


def test_listen_ends_digits_on_the_interdigit_timeout() -> None:
    io = io_for("keys:12; wait:5000; keys:3")
    heard = asyncio.run(io.listen(max_digits=14, interdigit_ms=2000))
    assert (heard.digits, heard.terminated) == ("12", False)


def test_no_input_after_the_timeout() -> None:
    io = io_for("")
    heard = asyncio.run(io.listen(VadConfig(no_input_ms=2000)))
    assert heard.kind == "no_input" and 2000 <= heard.t_ms <= 2100


def test_speech_barge_in_carries_over_to_the_next_prompt() -> None:
    io = io_for(f"!wait:500; !say:{M01}")

    async def go():
        return await io.play(PROMPT), await io.play(PROMPT), await io.listen()

    first, second, heard = asyncio.run(go())
    assert (first, second, heard.kind) == ("speech", "speech", "speech")
    assert len(io.channel.played) < len(PROMPT)


class CountingEngine:
    """A recogniser stand-in that keeps every byte it is fed (the gate is what is tested, not recognition)."""

    name, model_name, supports_grammar = "stand-in", "stand-in", False

    def __init__(self) -> None:
        self.fed = bytearray()

    def recognizer(self, phrases=None):  # type: ignore[no-untyped-def]
        from asr.results import Transcript

        outer = self

        class Rec:
            def accept(self, pcm: bytes) -> None:
                outer.fed += pcm

            def final(self) -> Transcript:
                return Transcript(text="", audio_ms=len(outer.fed) // 16)

        return Rec()

    def release(self, rec) -> None:  # type: ignore[no-untyped-def]
        pass


def test_recording_keeps_every_frame_and_the_recogniser_hears_the_message_with_its_pauses(tmp_path: Path) -> None:
    from ivr.media.recording import RecordingWriter

    engine = CountingEngine()
    channel = FileChannel(parse_script(f"!wait:2000; !say:{M01}; !wait:900; !say:{M01}; !wait:6000"),
                          CallInfo("m-1", "13800000000"))
    result = asyncio.run(CallIO(channel, engine).record(RecordingWriter(tmp_path / "r.wav")))
    recorded = read_wav(tmp_path / "r.wav")
    spoken = 2 * len(read_wav(M01)) + 900 * 16
    assert result.reason == "silence" and len(recorded) >= 2000 * 16 + spoken + 2900 * 16
    fed = bytes(engine.fed)
    start = recorded.find(fed)
    assert start > 1500 * 16  # one contiguous stretch: the pause between the sentences is in it ...
    assert len(fed) <= len(recorded) - start - 2500 * 16  # ... the silence that ended the message is not
    assert len(fed) >= spoken * 0.8 and result.transcript is not None
