"""Searching the knowledge base from what a caller said: homophones, near tones, synonyms, ranking."""
from __future__ import annotations

import pytest
from kbfiles import FIXTURE

from ivr.kb import KnowledgeBase, load_kb


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_kb(FIXTURE)


@pytest.mark.parametrize(("question", "expected"), [
    ("我的社保卡丢了怎么补办", "ss_card_lost"),
    ("那个我想问一下我那个设保卡找不着了", "ss_card_lost"),  # 社保 heard as 设保 (same sound, other tone)
    ("公暖什么时候开始啊", "ht_season"),  # 供暖 heard as 公暖
    ("我们家暖器一点都不热", "ht_not_warm"),  # 暖气 heard as 暖器
    ("取暖费去哪交", "ht_fee"),
    ("热费怎么缴纳", "ht_fee"),  # a synonym
    ("我想看看我交了几年养老保险", "ss_contribution_query"),
    ("我马上退休了退休金咋领", "ss_pension_claim"),
])
def test_the_entry_asked_for_comes_first(kb: KnowledgeBase, question: str, expected: str) -> None:
    hits = kb.search(question)
    assert hits[0].entry.id == expected, [(h.entry.id, h.score) for h in hits]
    assert 0.0 < hits[0].score <= 1.0
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


@pytest.mark.parametrize(("said", "heard"), [
    ("社保卡丢了怎么补办", "设保卡丢了怎么补办"),  # same sound, other tone
    ("社保卡丢了怎么补办", "射保咖丢了怎么补办"),
    ("供暖什么时候开始", "工暖什么时候开是"),
    ("暖气不热", "暖器不热"),
    ("取暖费怎么交", "去暖飞怎么交"),
    ("退休金怎么申请", "退修今怎么申请"),
    ("暖气片是凉的", "暖气片是娘的"),  # l/n, as the menus fold it
])
def test_a_misheard_question_keeps_most_of_its_similarity(kb: KnowledgeBase, said: str, heard: str) -> None:
    entry, clean = kb.similarities(said)[0]
    found, misheard = kb.similarities(heard)[0]
    assert found == entry
    assert misheard >= 0.75 * clean, (misheard, clean)


def test_scores_are_calibrated_probabilities_and_only_the_best_can_be_sure(kb: KnowledgeBase) -> None:
    hits = kb.search("我的社保卡丢了怎么补办")
    assert hits[0].score > 0.9 and all(h.score < 0.1 for h in hits[1:])
    similarities = kb.similarities("我的社保卡丢了怎么补办")
    assert [e for e, _ in similarities] == [h.entry for h in hits]
    assert similarities[0][1] < 1.0


def test_limit_and_empty_questions(kb: KnowledgeBase) -> None:
    assert len(kb.search("社保卡丢了", limit=1)) == 1
    assert len(kb.search("社保卡丢了", limit=5)) <= 5
    assert kb.search("") == [] and kb.search("，。？") == []


def test_a_question_the_knowledge_base_does_not_answer_scores_lower(kb: KnowledgeBase) -> None:
    answered = kb.search("社保卡丢了怎么办")[0].score
    unrelated = kb.search("楼下饭馆油烟太大了呛得受不了")
    assert not unrelated or unrelated[0].score < answered / 2


def test_a_recogniser_transcript_with_spaces_and_full_width_marks_finds_the_same(kb: KnowledgeBase) -> None:
    joined = kb.search("社保卡丢了怎么补办")
    spaced = kb.search("社保 卡 丢 了 ， 怎么 补办 ？")
    assert [(h.entry.id, h.score) for h in spaced] == [(h.entry.id, h.score) for h in joined]
