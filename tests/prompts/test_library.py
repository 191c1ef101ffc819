"""PromptLibrary: recorded WAVs win over TTS, calls never wait for TTS, composition from pieces."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_wav
from asr.audio import write_wav as _write_wav
from prompts import PromptLibrary, load_catalogue
from prompts.catalogue import PromptError
from prompts.compose import Cardinal, Counted, Digits
from prompts.library import (COUNT_GAP_MS, CROSSFADE_MS, DIGIT_GAP_MS, WORD_GAP_MS, beep, crossfaded,
                             trim_silence)
from prompts.render import STYLE_RATE, STYLES, render_catalogue
from prompts.voice_espeak import EspeakVoice

REPO = Path(__file__).resolve().parents[2]


def tone(ms: int, hz: float) -> bytes:
    return beep(ms, hz, -10)


def write_wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_wav(path, pcm)


def test_recorded_wav_wins_over_rendered(tmp_path: Path, prompt_cache: Path) -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    recorded = tmp_path / "recorded"
    write_wav(recorded / "welcome.wav", tone(500, 440))  # a voice artist's take for both styles
    write_wav(recorded / "elderly" / "goodbye.wav", tone(300, 330))  # only the elderly style
    lib = PromptLibrary(catalogue, prompt_cache, recorded)
    assert lib.get("welcome") == tone(500, 440) and lib.get("welcome", "elderly") == tone(500, 440)
    assert lib.get("goodbye", "elderly") == tone(300, 330)
    assert lib.get("goodbye") == read_wav(prompt_cache / "standard" / "goodbye.wav")
    assert lib.sources[("welcome", "standard")] == recorded / "welcome.wav"


def test_render_skips_recorded_prompts(tmp_path: Path) -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    recorded = tmp_path / "recorded"
    for pid in catalogue.prompts:
        write_wav(recorded / f"{pid}.wav", tone(100, 500))

    def no_tts() -> EspeakVoice:
        raise AssertionError("TTS must not run when every prompt is recorded")

    stats = render_catalogue(catalogue, tmp_path / "cache", recorded, engine_factory=no_tts)
    # the counted sentences too: their pieces are the artist's, so a call splices them (one voice)
    assert (stats.rendered, stats.recorded) == (0, (len(catalogue.prompts) + 90) * len(STYLES))


def test_unrendered_prompt_plays_a_tone_without_tts(tmp_path: Path) -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    lib = PromptLibrary(catalogue, tmp_path / "empty")  # nothing rendered: the call goes on
    assert lib.get("welcome") == beep(200, 600)
    assert len(lib.missing) == len(catalogue.prompts) * len(STYLES)
    with pytest.raises(PromptError, match=r"^prompt 'nope' is not in .*catalogue.yaml$"):
        lib.get("nope")


def test_missing_tts_engine_is_one_clear_error() -> None:
    with pytest.raises(PromptError) as err:
        EspeakVoice(driver="no_such_driver")
    assert str(err.value).startswith("no text-to-speech engine (")
    assert str(err.value).endswith("); install espeak-ng (apt-get install espeak-ng) or put recorded WAVs in the "
                                   "prompts' recorded folder")


def test_trim_silence() -> None:
    pcm = bytes(1600) + tone(200, 440) + bytes(3200)
    out = trim_silence(pcm)
    assert 200 * 16 <= len(out) <= 220 * 16
    assert trim_silence(bytes(800)) == b""


def test_compose_ticket_number_and_queue_position(tmp_path: Path) -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    recorded = tmp_path / "rec"
    hz = {pid: 300 + 20 * i for i, pid in enumerate(sorted(catalogue.prompts))}
    for pid, f in hz.items():
        write_wav(recorded / f"{pid}.wav", bytes(800) + tone(100, f) + bytes(800))
    lib = PromptLibrary(catalogue, tmp_path / "cache", recorded)
    got = lib.compose(["ticket_status_intro", Digits("2011")], "standard")
    piece = {pid: lib.piece(pid) for pid in hz}
    word_gap, count_gap = bytes(16 * WORD_GAP_MS), bytes(16 * COUNT_GAP_MS)
    expected = piece["ticket_status_intro"] + word_gap + bytes(16 * DIGIT_GAP_MS).join(
        [piece["num_2"], piece["num_0"], piece["num_yao"], piece["num_yao"]])
    assert got == expected  # four digits: one group
    twelve = crossfaded([piece["num_10"], piece["num_2"]])
    assert lib.compose([Cardinal(12)]) == twelve
    assert len(twelve) == len(piece["num_10"]) + len(piece["num_2"]) - 16 * CROSSFADE_MS  # the two overlap
    assert lib.compose([Cardinal(2)]) == piece["num_liang"]
    # the artist recorded the pieces, not the sentence: it is spliced from them (one voice), never rendered whole
    assert lib.compose([Counted("queue_position", 12)]) == (
        piece["queue_ahead"] + count_gap + twelve + count_gap + piece["queue_callers"])


def test_composed_numbers_from_real_rendered_pieces(prompt_cache: Path) -> None:
    lib = PromptLibrary(load_catalogue(REPO / "prompts" / "catalogue.yaml"), prompt_cache)
    five = lib.compose([Digits("20261128001")])
    x = np.frombuffer(five, dtype="<i2")
    assert 11 * 100 * 8 < len(x) < 11 * 900 * 8  # eleven spoken digits, each under a second
    assert lib.missing == []


def longest_silence_ms(pcm: bytes, below_dbfs: float = -45.0) -> int:
    """The longest run of 10 ms frames below `below_dbfs` between the first and the last sound."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    n = len(x) // 80
    quiet = np.sqrt(np.mean(x[: n * 80].reshape(n, 80) ** 2, axis=1)) < 10 ** (below_dbfs / 20)
    loud = np.flatnonzero(~quiet)
    run = best = 0
    for q in quiet[loud[0]: loud[-1] + 1]:
        run = run + 1 if q else 0
        best = max(best, run)
    return 10 * best


def test_queue_announcement_is_not_choppy(prompt_cache: Path) -> None:
    """Position and wait said as whole clauses where they were rendered (the tests' build: counts 1-3), spliced
    into the sentence outside them with no pause longer than a comma's, and no clicks at joins."""
    from prompts.compose import queue_announcement

    lib = PromptLibrary(load_catalogue(REPO / "prompts" / "catalogue.yaml"), prompt_cache)
    for style in STYLES:
        whole = lib.compose(queue_announcement(3, 2), style)
        assert whole == lib.whole(Counted("queue_position", 3), style) + bytes(
            2 * int(8 * WORD_GAP_MS / STYLE_RATE[style])) + lib.whole(Counted("queue_wait_minutes", 2), style)
        said = lib.compose(queue_announcement(15, 12), style)  # outside the build: from pieces
        assert lib.whole(Counted("queue_position", 15), style) is None
        assert longest_silence_ms(said) <= WORD_GAP_MS / STYLE_RATE[style] + 40  # only the clause pause
        position = lib.compose([Counted("queue_position", 15)], style)
        assert longest_silence_ms(position) <= 80  # 前面还有十五位来电: said in one breath
    for pid in ("queue_ahead", "num_10", "num_5", "queue_callers"):
        edge = np.abs(np.frombuffer(lib.piece(pid), dtype="<i2")[[0, -1]].astype(int))
        assert edge.max() == 0  # every piece fades in from and out to zero: joins cannot click


def test_prompts_rendered_from_data_are_read_from_their_files_and_follow_changes(tmp_path: Path) -> None:
    """A knowledge-base answer: played from its file (recorded first), joined like any prompt, read again once the
    file was replaced; one never rendered is not played (`has` says so) rather than a tone."""
    from asr.audio import write_wav
    from prompts.files import FilePrompts

    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    cache, recorded = tmp_path / "kb", tmp_path / "recorded"
    (cache / "standard").mkdir(parents=True)
    recorded.mkdir()
    first, second = beep(400, 500), beep(600, 700)
    write_wav(cache / "standard" / "kb_x.wav", first)
    lib = PromptLibrary(catalogue, tmp_path / "empty", extra=FilePrompts(cache, recorded))
    assert lib.has("kb_x") and lib.get("kb_x") == first and lib.get("kb_x", "elderly") == first  # standard's
    assert len(lib.compose(["kb_x", "welcome"])) > len(first) // 2
    write_wav(cache / "standard" / ".kb_x.new", second)
    (cache / "standard" / ".kb_x.new").replace(cache / "standard" / "kb_x.wav")  # as the renderer does
    assert lib.get("kb_x") == second
    write_wav(recorded / "kb_x.wav", first)  # a voice artist's recording wins
    assert lib.get("kb_x") == first
    assert not lib.has("kb_y")
    with pytest.raises(PromptError, match=r"^prompt 'kb_y' is not in .*catalogue.yaml nor rendered in .*kb$"):
        lib.get("kb_y")
