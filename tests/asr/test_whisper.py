"""The Whisper engine: real Whisper base on the Mandarin fixtures, and its guards against Whisper's failure modes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import FRAME_BYTES, SAMPLE_RATE, read_wav
from asr.errors import ModelLoadError
from asr.results import Transcript, Word
from asr.whisper import (
    Segment,
    WhisperEngine,
    WhisperOptions,
    collapse_loops,
    guard_segments,
    loudest_frame_dbfs,
    speech_chunks,
    untimed_tail,
    whisper_model_problem,
)
from bench.asr_resample import edit_distance

FIXTURES = Path(__file__).resolve().parents[2] / "audio_fixtures" / "zh"
PROMPT = "请说投诉、咨询、查询进度或人工服务"


def cer(hyp: str, ref: str) -> float:
    return edit_distance(list(hyp), list(ref)) / len(ref)


def words(*texts: str) -> tuple[Word, ...]:
    return tuple(Word(t, i * 0.2, i * 0.2 + 0.2, 0.9) for i, t in enumerate(texts))


def test_a_complaint_is_transcribed_in_simplified_mandarin_with_word_timings(whisper_engine: WhisperEngine) -> None:
    pcm = read_wav(FIXTURES / "c01.wav")
    rec = whisper_engine.recognizer()
    partials = [rec.accept(pcm[i:i + FRAME_BYTES]) for i in range(0, len(pcm), FRAME_BYTES)]
    result = rec.final()
    assert partials == [None] * len(partials)  # buffered: Whisper reads the whole utterance at final()
    assert (result.engine, result.model, result.audio_ms) == ("whisper", "whisper-base", len(pcm) * 500 // SAMPLE_RATE)
    assert cer(result.text, "我要反映一下我们小区门口的垃圾好几天没人清理了") <= 0.15, result.text
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= result.audio_ms / 1000 + 0.05
    assert all(0.0 < w.conf <= 1.0 for w in result.words)
    assert result.text == "".join(w.text for w in result.words)
    assert result.extra == {}
    again = whisper_engine.recognizer()  # a fresh buffer, same model: the same words
    again.accept(pcm)
    assert again.final() == result


def test_traditional_characters_are_written_simplified_and_digits_as_digits(whisper_base_dir: Path) -> None:
    # Whisper base writes traditional characters now and then (投訴 for m01 on one machine); a prompt in traditional
    # script makes it do so on every clip (我們, 幾, 沒, 電話 without the conversion). With that prompt its decode of
    # c01 loops and falls back to sampling, so what it adds after the speech differs from run to run: the guard
    # against words invented past the speech drops it
    engine = WhisperEngine(whisper_base_dir, device="cpu", options=WhisperOptions(initial_prompt="以下是普通話的句子。"))
    complaint = engine.transcribe(read_wav(FIXTURES / "c01.wav"))
    assert "我们" in complaint.text and not set(complaint.text) & set("們幾沒區門裡"), complaint.text
    assert cer(complaint.text, "我要反映一下我们小区门口的垃圾好几天没人清理了") <= 0.15, complaint.text
    phone = engine.transcribe(read_wav(FIXTURES / "n01.wav"))
    assert "电话" in phone.text and "13812345678" in phone.text, phone.text


def test_silence_and_very_short_audio_are_not_decoded(whisper_engine: WhisperEngine) -> None:
    quiet = whisper_engine.transcribe(bytes(SAMPLE_RATE * 2 * 2))
    assert quiet.empty and quiet.extra == {"guards": "not decoded: silence (loudest 20 ms at -96 dBFS)"}
    hiss = (np.random.default_rng(1).normal(0, 40, SAMPLE_RATE * 2)).astype("<i2").tobytes()
    assert whisper_engine.transcribe(hiss).extra == {"guards": "not decoded: silence (loudest 20 ms at -57 dBFS)"}
    line_hiss = (np.random.default_rng(2).normal(0, 300, SAMPLE_RATE * 3)).astype("<i2").tobytes()  # -41 dBFS
    heard = whisper_engine.transcribe(line_hiss)
    assert heard.empty, heard  # decoded: Whisper skips it or the no-speech guard drops it
    assert loudest_frame_dbfs(read_wav(FIXTURES / "c01.wav")) > -30
    short = whisper_engine.transcribe(read_wav(FIXTURES / "c01.wav")[:1600])
    assert short.empty and short.extra == {"guards": "not decoded: 100 ms of audio is too short"}


def test_short_answers_never_come_back_as_the_initial_prompt(whisper_base_dir: Path) -> None:
    engine = WhisperEngine(whisper_base_dir, device="cpu", options=WhisperOptions(initial_prompt=PROMPT))
    pad = bytes(SAMPLE_RATE // 5 * 2)
    texts = []
    for clip in ("m01", "m02", "m03", "m04", "m05", "m06", "m08", "m09"):
        result = engine.transcribe(pad + read_wav(FIXTURES / f"{clip}.wav") + pad)
        texts.append(result.text)
        assert not result.text or cer(result.text, "请说投诉咨询查询进度或人工服务") > 0.5, (clip, result)
    assert any(texts), texts  # the guard drops echoes, not every answer


def test_segments_without_speech_hallucinations_and_echoes_are_dropped_and_said() -> None:
    opts = WhisperOptions(initial_prompt=PROMPT)
    guarded = guard_segments([
        Segment("投诉", words("投", "诉"), 0.2),  # a word of the prompt said alone is an answer, kept
        Segment("请说投诉咨询", words("请", "说", "投", "诉", "咨", "询"), 0.3),
        Segment("询询进度或人工服务", words(*"询询进度或人工服务"), 0.3),  # a loop's leftover, then the prompt's tail
        Segment("查询进度", words(*"查询进度"), 0.2),  # one of the prompt's choices, said: an answer
        Segment("字幕由Amara.org社区提供", words("字幕", "由", "Amara.org", "社区", "提供"), 0.1),
        Segment("谢谢", words("谢", "谢"), 0.8, avg_logprob=-0.9),
        Segment("好的", words("好的"), 0.8, avg_logprob=-0.3),  # Whisper is sure of its words: kept
        Segment("啊", words("啊"), 0.1, avg_logprob=-1.3),
    ], opts)
    assert [s.text for s in guarded.segments] == ["投诉", "查询进度", "好的"]
    assert guarded.notes == ["dropped '请说投诉咨询': the initial prompt echoed",
                             "dropped '询询进度或人工服务': the initial prompt echoed",
                             "dropped '字幕由Amara.org社区提供': a known hallucination",
                             "dropped '谢谢': no speech 0.80",
                             "dropped '啊': unsure (mean log-probability -1.30)"]
    without = guard_segments([Segment("请说投诉咨询", words("请说投诉咨询"), 0.3)], WhisperOptions())
    assert [s.text for s in without.segments] == ["请说投诉咨询"] and without.notes == []


def timed(*spec: tuple[str, float, float, float]) -> tuple[Word, ...]:
    return tuple(Word(text, start, end, conf) for text, start, end, conf in spec)


def test_words_invented_past_the_end_of_the_speech_are_dropped() -> None:
    # c01 with a prompt in traditional script, as Whisper base decodes it with its temperature fallback: the speech
    # ends at 3.88 s, the words after it are stretched over the silence, then squeezed into no time at the end
    said = (("清", 3.34, 3.56, 0.91), ("理", 3.56, 3.76, 0.99), ("了", 3.76, 3.88, 0.97))
    invented = timed(*said, ("请", 3.88, 4.24, 0.026), ("问", 4.24, 4.24, 0.07), ("您", 4.24, 4.24, 0.09),
                     ("设", 4.24, 4.24, 0.26), ("计", 4.24, 4.24, 0.87))
    assert untimed_tail(invented) == 5
    guarded = guard_segments([Segment("清理了请问您设计", invented, 0.1)], WhisperOptions())
    assert [s.text for s in guarded.segments] == ["清理了"]
    assert guarded.notes == ["dropped '请问您设计': words in no time after the speech"]
    assert untimed_tail(timed(*said, ("您", 3.88, 3.88, 0.9))) == 1  # a sure word with a duration stays
    assert untimed_tail(timed(*said[:2], ("了", 3.76, 3.88, 0.05))) == 0  # unsure alone is not invented
    nothing_said = guard_segments([Segment("请问", timed(("请", 4.2, 4.2, 0.3), ("问", 4.2, 4.2, 0.3)), 0.1)],
                                  WhisperOptions())
    assert nothing_said.segments == [] and nothing_said.notes == ["dropped '请问': words in no time after the speech"]


def test_repetition_loops_are_cut_back_to_one() -> None:
    looped, cut = collapse_loops(words("路灯", "坏了", "好的", "好的", "好的", "好的", "好的"))
    assert [w.text for w in looped] == ["路灯", "坏了", "好的"] and cut == 4
    phrase, cut = collapse_loops(words(*"我要投诉我要投诉我要投诉我要投诉"))
    assert "".join(w.text for w in phrase) == "我要投诉" and cut == 12
    said_twice, cut = collapse_loops(words("谢", "谢", "对", "对"))
    assert len(said_twice) == 4 and cut == 0
    guarded = guard_segments([Segment("x", words("好的", "好的", "好的"), 0.1)], WhisperOptions())
    assert guarded.segments[0].text == "好的" and guarded.notes == ["cut a repetition loop of 2 words"]


def test_a_long_recording_is_decoded_sentence_by_sentence(whisper_engine: WhisperEngine) -> None:
    gap = bytes(SAMPLE_RATE)  # half a second
    sentences = [read_wav(FIXTURES / f"{name}.wav") for name in ("c01", "c03", "c05", "c01")]
    pieces = speech_chunks(b"".join(s + gap for s in sentences))
    assert len(pieces) == 4 and b"".join(pieces) == b"".join(s + gap for s in sentences)  # one a sentence
    result = whisper_engine.transcribe(b"".join(s + gap for s in sentences))
    assert result.text.count("垃圾") == 2 and "一个星期" in result.text, result.text  # not only the first sentence
    assert result.words[-1].start > 13.0  # word times count from the start of the recording


def test_pauses_cut_pieces_of_two_to_ten_seconds() -> None:
    tone = (np.sin(np.arange(SAMPLE_RATE) * 0.3) * 8000).astype("<i2").tobytes()  # one second of sound
    pause = bytes(SAMPLE_RATE)  # half a second
    assert [len(p) // 16 for p in speech_chunks((tone + pause) * 6)] == [2740, 3000, 3260]  # cut mid-pause, >= 2 s
    assert [len(p) // 16 for p in speech_chunks(tone * 25)] == [10_000, 10_000, 5_000]  # no pause: cut when full
    assert speech_chunks(b"") == [] and speech_chunks(tone[:100]) == [tone[:100]]


def test_a_folder_that_is_not_a_whisper_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    assert whisper_model_problem(tmp_path) == f"{tmp_path}: tokenizer.json is missing (not a CTranslate2 Whisper model)"
    with pytest.raises(ModelLoadError, match=r"tokenizer.json is missing \(not a CTranslate2 Whisper model\)$"):
        WhisperEngine(tmp_path)
    assert whisper_model_problem(tmp_path / "nothing") == f"{tmp_path / 'nothing'} is not a directory"


def test_the_transcript_keeps_what_the_guards_did() -> None:
    t = Transcript("", engine="whisper", extra={"guards": "not decoded: silence (loudest 20 ms at -96 dBFS)"})
    assert Transcript.from_dict(t.to_dict()) == t
    assert "extra" not in Transcript("好").to_dict()
