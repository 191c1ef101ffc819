"""Counted sentences in the catalogue: a whole sentence per count rendered at build time, pieces for the rest."""
from __future__ import annotations

from pathlib import Path

import pytest

from prompts import load_catalogue
from prompts.catalogue import PromptError, PromptText

REPO = Path(__file__).resolve().parents[2]

PIECES = """\
queue_ahead: 您前面还有
queue_callers: 位来电在等待
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(PIECES + text, encoding="utf-8")
    return path


def test_counted_sentence_is_a_whole_sentence_per_value(tmp_path: Path) -> None:
    path = write(tmp_path, "queue_position:\n  text: 您前面还有{n}位来电在等待\n  values: 1-3\n"
                           "  pieces: [queue_ahead, queue_callers]\n")
    catalogue = load_catalogue(path)
    assert "queue_position" not in catalogue  # not a prompt of its own: its sentences are
    counted = catalogue.counted["queue_position"]
    assert (counted.values, counted.before, counted.after, counted.counting) == (
        (1, 2, 3), "queue_ahead", "queue_callers", True)
    assert catalogue.sentences() == {
        f"queue_position_{n}": (counted, PromptText(f"queue_position_{n}", f"您前面还有{n}位来电在等待",
                                                     f"您前面还有{n}位来电在等待")) for n in (1, 2, 3)}


def test_the_shipped_counted_sentences() -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    assert catalogue.counted["queue_position"].values == tuple(range(1, 31))
    assert catalogue.counted["queue_wait_minutes"].values == tuple(range(1, 61))
    assert len(catalogue.sentences()) == 90
    assert catalogue.sentences()["queue_wait_minutes_2"][1].text == "预计等待2分钟"


@pytest.mark.parametrize("entry,error", [
    ("  text: 您前面还有位来电在等待\n  values: 1-3\n  pieces: [queue_ahead, queue_callers]\n",
     " needs {n} once in its text (and its elderly text), where the count is said"),
    ("  text: 您前面还有{n}位来电在等待\n  values: 3-1\n  pieces: [queue_ahead, queue_callers]\n",
     " has values '3-1': expected the counts rendered whole, like 1-30"),
    ("  text: 您前面还有{n}位来电在等待\n  values: [1, 2]\n  pieces: [queue_ahead, queue_callers]\n",
     " has values [1, 2]: expected the counts rendered whole, like 1-30"),
    ("  text: 您前面还有{n}位来电在等待\n  values: 1-3\n",
     " needs pieces: [before, after], the prompts said around a count outside its values (null for none)"),
    ("  text: 您前面还有{n}位来电在等待\n  values: 1-3\n  pieces: [queue_ahead, nope]\n",
     " names the piece 'nope', which is not in the catalogue"),
    ("  text: 您前面共有{n}位来电在等待\n  values: 1-3\n  pieces: [queue_ahead, queue_callers]\n",
     ": its pieces say '您前面还有{n}位来电在等待', not '您前面共有{n}位来电在等待' (standard)"),
    ("  text: 您前面还有{n}位来电在等待\n  elderly: 前面还有{n}位\n  values: 1-3\n"
     "  pieces: [queue_ahead, queue_callers]\n",
     ": its pieces say '您前面还有{n}位来电在等待', not '前面还有{n}位' (elderly)"),
])
def test_bad_counted_sentence_is_one_clear_error(tmp_path: Path, entry: str, error: str) -> None:
    path = write(tmp_path, "queue_position:\n" + entry)
    with pytest.raises(PromptError) as err:
        load_catalogue(path)
    assert str(err.value) == f"{path}: prompt 'queue_position'{error}"


def test_a_count_with_no_piece_before_it(tmp_path: Path) -> None:
    path = write(tmp_path, "at_hour_piece: 点\nat_hour:\n  text: '{n}点'\n  values: 8-9\n  pieces: [null, at_hour_piece]\n")
    counted = load_catalogue(path).counted["at_hour"]
    assert (counted.before, counted.after, counted.counting) == ("", "at_hour_piece", True)  # 两点
