"""Numbers spliced from pieces at run time join smoothly: level-matched pieces, no clicks, pauses between groups.

The pieces here are a voice artist's worst case: recordings cut tight, tones that start and stop at full swing,
at levels 12 dB apart."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import write_wav
from prompts import PromptLibrary, load_catalogue
from prompts.compose import Digits
from prompts.library import DIGIT_GAP_MS, GROUP_GAP_MS, JOIN_FADE_MS, WORD_GAP_MS
from prompts.render import STYLE_LEVEL_DBFS, STYLE_RATE
from prompts.shaping import speech_level_dbfs

REPO = Path(__file__).resolve().parents[2]
CALLBACK = ["callback_number_is", Digits("13800138000"), "callback_confirm"]


def abrupt_tone(ms: int, hz: float, dbfs: float) -> bytes:
    """A tone that starts at its peak (cosine) and stops mid-swing: joined as it is, it clicks."""
    t = np.arange(8 * ms) / 8000
    return np.rint(32768 * 10 ** (dbfs / 20) * np.cos(2 * np.pi * hz * t)).astype("<i2").tobytes()


def max_step(pcm: bytes) -> int:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    return int(np.abs(np.diff(x)).max())


def zero_runs(pcm: bytes, min_samples: int = 16) -> list[int]:
    """Lengths (samples) of the runs of digital silence at least `min_samples` long."""
    zero = np.concatenate([[False], np.frombuffer(pcm, dtype="<i2") == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    return [int(b - a) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_samples]


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    (tmp_path / "rec").mkdir()
    for i, pid in enumerate(sorted(catalogue.prompts)):
        level = -8.0 if i % 2 else -20.0  # one piece 12 dB louder than the next
        write_wav(tmp_path / "rec" / f"{pid}.wav", abrupt_tone(180, 150 + 5 * i, level))
    return PromptLibrary(catalogue, tmp_path / "no-cache", tmp_path / "rec")


@pytest.mark.parametrize("style", list(STYLE_RATE))
def test_pieces_are_level_matched_to_their_style(library: PromptLibrary, style: str) -> None:
    for pid in ("callback_number_is", "num_yao", "num_3", "num_8", "num_0"):
        assert abs(speech_level_dbfs(library.piece(pid, style)) - STYLE_LEVEL_DBFS[style]) < 0.5


@pytest.mark.parametrize("style", ["standard", "elderly"])
def test_no_join_clicks(library: PromptLibrary, style: str) -> None:
    """No sample-to-sample step anywhere in the composed number larger than 1.5x the largest inside a piece
    (a tone cut mid-swing steps by its whole amplitude, about 7x)."""
    said = library.compose(CALLBACK, style)
    inside = max(max_step(library.piece(p, style)[80:-80]) for p in
                 ("callback_number_is", "callback_confirm", "num_yao", "num_3", "num_8", "num_0"))
    assert max_step(said) <= 1.5 * inside


@pytest.mark.parametrize("style", list(STYLE_RATE))
def test_pauses_between_digit_groups_only(library: PromptLibrary, style: str) -> None:
    """138 | 0013 | 8000: a clause pause after 回拨号码是, a group pause between groups, a short one between the
    digits of a group, all longer in the slower styles; each piece's own silence cut."""
    said = library.compose(CALLBACK, style)
    word, group, digit = (int(8 * ms / STYLE_RATE[style]) for ms in (WORD_GAP_MS, GROUP_GAP_MS, DIGIT_GAP_MS))
    runs = zero_runs(said)
    expected = [word, digit, digit, group, digit, digit, digit, group, digit, digit, digit, word]
    assert len(runs) == len(expected)
    for run, gap in zip(runs, expected):
        assert gap <= run <= gap + 2 * 8 * JOIN_FADE_MS  # the pause, and the faded ends of the pieces round to 0
    digits = sum(len(library.piece(p, style)) for p in ("num_yao", "num_3", "num_8", "num_0", "num_0", "num_yao",
                                                       "num_3", "num_8", "num_0", "num_0", "num_0")) // 2
    head, tail = (len(library.piece(p, style)) // 2 for p in ("callback_number_is", "callback_confirm"))
    assert len(said) // 2 == head + tail + digits + sum(expected)
