"""Menu intents from meaning: the shipped families' learned models beside the keyword matcher, and the rule that
combines them (real models, trained from asr/data/intents.yaml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from asr.intents import IntentMatch, Menu, MenuOption, NoMatch
from asr.meaning import (
    STRONG_KEYWORD, IntentFamilyError, family_model, family_names, load_families, understand, without_negated,
)

MAIN = Menu((MenuOption("elderly", "0", ("老年人", "老人")), MenuOption("complaint", "1", ("投诉", "举报", "反映", "报修")),
             MenuOption("consult", "2", ("咨询", "问一下", "政策")), MenuOption("progress", "3", ("进度", "查询", "工单")),
             MenuOption("suggestion", "4", ("建议", "意见"))), builtins=("agent", "repeat", "slower", "louder"))


@pytest.fixture(scope="module")
def main_model():  # type: ignore[no-untyped-def]
    return family_model("main")


@pytest.mark.parametrize("heard, intent", [
    ("问个事儿", "consult"),
    ("找个真人", "agent"),
    ("你说什么", "repeat"),
    ("你讲话太快了", "slower"),
    ("我上次反映的事怎么样了", "progress"),  # 反映 is a complaint keyword; the sentence asks after a ticket
    ("我年纪大了不会案件", "elderly"),  # 按键 heard as 案件
])
def test_callers_own_words_that_keywords_miss_or_mistake(main_model, heard: str, intent: str) -> None:  # type: ignore[no-untyped-def]
    keyword = MAIN.match_text(heard)
    got = understand(MAIN, main_model, heard)
    assert isinstance(got, IntentMatch) and got.intent == intent
    assert not (isinstance(keyword, IntentMatch) and keyword.intent == intent and keyword.score >= STRONG_KEYWORD)


def test_a_keyword_that_is_the_whole_answer_wins_and_says_so(main_model) -> None:  # type: ignore[no-untyped-def]
    got = understand(MAIN, main_model, "我要投诉")
    assert isinstance(got, IntentMatch) and (got.intent, got.evidence.kind) == ("complaint", "keyword")


def test_meaning_is_explained_by_its_terms(main_model) -> None:  # type: ignore[no-untyped-def]
    got = understand(MAIN, main_model, "我上次反映的事怎么样了")
    assert isinstance(got, IntentMatch) and got.evidence.kind == "meaning" and got.key == "3"
    assert got.evidence.matched in "我上次反映的事怎么样了" and got.evidence.similarity == got.score >= 0.5


@pytest.mark.parametrize("heard, intent", [("不要投诉", None), ("不要投诉了算了", None), ("我不要投诉我想咨询", "consult"),
                                           ("我不是要投诉我是来查进度的", "progress"), ("别转人工", None)])
def test_negation_is_respected(main_model, heard: str, intent: str | None) -> None:  # type: ignore[no-untyped-def]
    got = understand(MAIN, main_model, heard)
    assert (got.intent if isinstance(got, IntentMatch) else None) == intent


@pytest.mark.parametrize("heard", ["今天天气不错", "嗯", "", "喂喂"])
def test_a_no_match_stays_a_no_match_when_both_are_unsure(main_model, heard: str) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(understand(MAIN, main_model, heard), NoMatch)


def test_an_intent_the_menu_does_not_offer_is_never_chosen() -> None:
    only_two = Menu((MenuOption("complaint", "1", ("投诉",)), MenuOption("consult", "2", ("咨询",))))
    got = understand(only_two, family_model("main"), "我年纪大了不会按键")  # elderly: not an option here
    assert isinstance(got, NoMatch)


def test_without_a_model_it_is_the_keyword_matcher() -> None:
    assert understand(MAIN, None, "问个事儿") == MAIN.match_text("问个事儿")


def test_without_negated_drops_what_a_negator_rules_out() -> None:
    assert without_negated("不要投诉了我想咨询") == "不要了我想咨询"
    assert without_negated("别转人工") == "别工"
    assert without_negated("我年纪大了不会按键") == "我年纪大了不会按键"  # 不会 says what they cannot do


def test_the_shipped_families_and_their_errors(tmp_path: Path) -> None:
    assert set(family_names()) == {"main", "consult", "elderly"}
    families = load_families()
    assert {"agent", "repeat", "slower", "louder", "none"} <= set(families["consult"])  # the common intents
    with pytest.raises(IntentFamilyError, match=r"^unknown intent family 'xyz'; known: main, consult, elderly$"):
        family_model("xyz")
    bad = tmp_path / "bad.yaml"
    bad.write_text("families: {main: {complaint: []}}\n", encoding="utf-8")
    with pytest.raises(IntentFamilyError, match=r"bad\.yaml: family 'main': intent 'complaint' needs a list of "
                                                r"phrasings$"):
        load_families(bad)
    with pytest.raises(IntentFamilyError, match=r"none\.yaml: intent phrasings not found$"):
        load_families(tmp_path / "none.yaml")
