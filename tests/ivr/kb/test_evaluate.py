"""`ivr kb evaluate`'s figures: top-1/top-3, wrong answers spoken at the threshold, the set's format."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from kbfiles import FIXTURE

from ivr.kb import KbError, KnowledgeBase, load_kb
from ivr.kb.evaluate import evaluate, format_report, load_questions

TODAY = date(2026, 12, 6)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_kb(FIXTURE)


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "set.tsv"
    path.write_text("question\texpected\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_wrong_answers_spoken_count_only_what_the_line_would_say(kb: KnowledgeBase, tmp_path: Path) -> None:
    questions = load_questions(write(
        tmp_path,
        "社保卡丢了怎么挂失补办\tss_card_lost",  # right, spoken
        "我的社保卡丢了怎么办\t-",  # the set says no entry answers it: a wrong answer spoken
        "取暖费交到哪里去交\tht_season",  # top is ht_fee, unverified: wrong, but never spoken
        "今年公暖什么时候开始\tht_season",
        "# a comment line",
        "",
        "楼下饭馆油烟太大了\t-",
    ), kb)
    assert [q.line for q in questions] == [2, 3, 4, 5, 8]
    report = evaluate(kb, questions, 0.8, TODAY)
    assert [o.hits[0].entry.id for o in report.outcomes[:4]] == ["ss_card_lost", "ss_card_lost", "ht_fee",
                                                                 "ht_season"]
    assert report.top(1) == pytest.approx(2 / 3) and report.top(3) == pytest.approx(2 / 3)
    assert report.wrong_spoken() == 1
    assert report.wrong_spoken(every_entry=True) == 2  # ht_fee would be said if it were checked
    assert report.right_spoken() == 2
    assert report.wrong_spoken(threshold=1.01) == 0


def test_expired_entries_are_not_spoken(kb: KnowledgeBase, tmp_path: Path) -> None:
    questions = load_questions(write(tmp_path, "到了退休年龄怎么领养老金啊\tss_pension_claim"), kb)
    assert evaluate(kb, questions, 0.5, date(2026, 12, 31)).right_spoken() == 1
    assert evaluate(kb, questions, 0.5, date(2027, 1, 1)).right_spoken() == 0


def test_the_report_prints_every_figure(kb: KnowledgeBase) -> None:
    questions = load_questions(Path(__file__).parent / "fixture_questions.tsv", kb)
    report = evaluate(kb, questions, 0.8, TODAY)
    lines = format_report(report).splitlines()
    assert lines[:6] == [
        "questions: 8 (6 answered by an entry, 2 not)",
        "top-1: 100.0%   top-3: 100.0%",
        "threshold 0.80, speakable entries on 2026-12-06:",
        "  wrong answer spoken: 0/8 (0.0%)",
        "  right answer spoken: 5/6 (83.3%)",
        "  if every entry were checked: wrong 0/8 (0.0%), right 6/6 (100.0%)",
    ]
    assert lines[6].startswith("search time per question: p50 ") and lines[6].endswith(" ms")
    assert len(lines) == 7
    assert report.copied == ()


def test_questions_copied_from_the_entries_are_pointed_out(kb: KnowledgeBase, tmp_path: Path) -> None:
    questions = load_questions(write(tmp_path, "取暖费怎么交？\tht_fee", "我们家取暖费怎么交\tht_fee",
                                     "社保卡丢失挂失和补办\tss_card_lost"), kb)
    report = evaluate(kb, questions, 0.8, TODAY)
    assert [q.line for q in report.copied] == [2, 4]
    assert format_report(report).splitlines()[1] == (
        "note: 2 questions are an entry's own question form or title word for word (lines 2, 4): keep the set apart")


@pytest.mark.parametrize(("text", "message"), [
    ("question,expected\n", "{p}:1: the header must be question<TAB>expected"),
    ("question\texpected\n社保卡丢了\n", "{p}:2: expected question<TAB>expected"),
    ("question\texpected\n社保卡丢了\tss_nope\n", "{p}:2: 'ss_nope' is not an entry of the knowledge base"),
    ("question\texpected\n", "{p}: no questions"),
])
def test_a_bad_set_is_refused_naming_the_line(kb: KnowledgeBase, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KbError) as info:
        load_questions(path, kb)
    assert str(info.value) == message.format(p=path)
    with pytest.raises(KbError, match="evaluation set not found"):
        load_questions(tmp_path / "none.tsv", kb)
