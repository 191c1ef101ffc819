"""Menu-intent matching: DTMF, keywords, homophones, ordinals, built-in phrases, and the shared transcripts."""
from __future__ import annotations

from pathlib import Path

import pytest

from asr.intents import (
    BUILTIN_PHRASES, Evidence, IntentMatch, Menu, MenuOption, NoMatch, fold_syllable, menu_from_pairs,
    syllable_similarity,
)

HOTLINE = Menu((
    MenuOption("complaint", "1", ("投诉", "反映", "举报")),
    MenuOption("consult", "2", ("咨询", "请问", "问一下", "想问")),
    MenuOption("progress", "3", ("查询进度", "进度", "查进度")),
    MenuOption("agent", "0"),
    MenuOption("repeat", "*"),
))

SERVICES = Menu((
    MenuOption("social_insurance", "1", ("社保", "社会保险")),
    MenuOption("medical_insurance", "2", ("医保", "医疗保险")),
    MenuOption("housing_fund", "3", ("公积金",)),
    MenuOption("heating", "4", ("暖气", "供暖")),
    MenuOption("parking", "5", ("停车", "违章停车")),
    MenuOption("noise", "6", ("噪音", "施工噪音")),
))


def intent_of(result: IntentMatch | NoMatch) -> str | None:
    return result.intent if isinstance(result, IntentMatch) else None


@pytest.mark.parametrize(("text", "intent"), [
    # plain keywords and synonyms, inside short sentences
    ("投诉", "complaint"), ("我要投诉", "complaint"), ("我想反映个问题", "complaint"), ("咨询", "consult"),
    ("查询进度", "progress"), ("查一下进度", "progress"),
    # built-in phrases
    ("转人工", "agent"), ("人工服务", "agent"), ("客服", "agent"), ("找人工", "agent"), ("我要人工", "agent"),
    ("重复", "repeat"), ("再说一遍", "repeat"), ("没听清", "repeat"), ("听不清", "repeat"),
    ("我听不清楚，说慢一点", "repeat"), ("你说什么我没听清", "repeat"),
    # homophones and tones
    ("头诉", "complaint"), ("我要头诉", "complaint"), ("人公", "agent"), ("人公服务", "agent"),
    ("转人公", "agent"), ("资询", "consult"), ("查询金度", "progress"), ("查寻进度", "progress"),
    # ordinals, digits and spoken keys
    ("一", "complaint"), ("幺", "complaint"), ("二", "consult"), ("两", "consult"), ("三", "progress"),
    ("第一个", "complaint"), ("第二个", "consult"), ("选二", "consult"), ("按三", "progress"), ("三号", "progress"),
    ("我选第二个", "consult"), ("2", "consult"), ("儿", "consult"), ("星号", "repeat"),
    ("零", "agent"), ("按零", "agent"), ("0", "agent"), ("灵", "agent"),
    # full-width and Vosk spacing
    ("我 要 投诉", "complaint"), ("２", "consult"),
])
def test_hotline_menu(text: str, intent: str) -> None:
    result = HOTLINE.match_text(text)
    assert intent_of(result) == intent, result


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("  ，。", "empty"),
    ("你好", "below_threshold"),
    ("今天天气不错", "below_threshold"),
    ("我们楼的电梯坏了一个星期了物业一直不修", "below_threshold"),  # 一个 is not "option one"
    ("第一次打电话", "below_threshold"),
    ("路上有个洞", "below_threshold"),
    ("四", "below_threshold"),  # no fourth option
    ("是的", "below_threshold"),  # yes/no are not active in this menu
    ("我不要投诉", "below_threshold"),  # negated keyword
])
def test_hotline_no_match(text: str, reason: str) -> None:
    result = HOTLINE.match_text(text)
    assert isinstance(result, NoMatch), result
    assert result.reason == reason


def test_negation_moves_to_the_other_choice() -> None:
    assert intent_of(HOTLINE.match_text("我不要投诉我要咨询")) == "consult"


def test_two_choices_in_one_utterance_are_ambiguous() -> None:
    result = HOTLINE.match_text("投诉咨询")
    assert isinstance(result, NoMatch) and result.reason == "ambiguous"
    assert {result.best.intent, result.runner_up.intent} == {"complaint", "consult"}  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "intent"), [
    ("社保", "social_insurance"), ("设保", "social_insurance"), ("射保", "social_insurance"),
    ("我想问社保的事", "social_insurance"), ("社会保险", "social_insurance"),
    ("医保", "medical_insurance"), ("一保", "medical_insurance"), ("医疗保险", "medical_insurance"),
    ("公积金", "housing_fund"), ("工积金", "housing_fund"), ("公基金", "housing_fund"),
    ("暖气", "heating"), ("卵气", "heating"),  # n/l
    ("供暖", "heating"), ("共暖", "heating"),
    ("停车", "parking"), ("听车", "parking"), ("亭车", "parking"), ("挺车", "parking"),
    ("违章停车", "parking"), ("违张停车", "parking"),
    ("噪音", "noise"), ("照音", "noise"),  # zh/z
    ("施工噪音", "noise"), ("司工噪音", "noise"),  # sh/s
])
def test_homophones_and_accent_confusions(text: str, intent: str) -> None:
    assert intent_of(SERVICES.match_text(text)) == intent


def test_homophone_evidence_and_scores() -> None:
    exact = SERVICES.match_text("社保")
    homophone = SERVICES.match_text("设保")
    fuzzy = SERVICES.match_text("卵气")
    assert isinstance(exact, IntentMatch) and isinstance(homophone, IntentMatch) and isinstance(fuzzy, IntentMatch)
    assert exact.score == 1.0
    assert exact.evidence == Evidence("keyword", "社保", "社保", 0, 2, 1.0, "")
    assert homophone.evidence == Evidence("keyword", "设保", "社保", 0, 2, 0.96, "she4 bao3")
    assert fuzzy.evidence.similarity == pytest.approx((0.75 + 1.0) / 2)
    assert exact.score > homophone.score > fuzzy.score
    assert homophone.key == "1"


@pytest.mark.parametrize(("heard", "expected", "similarity"), [
    ("社", "社", 1.0), ("设", "社", 0.92), ("射", "社", 0.92), ("蛇", "社", 0.85), ("色", "社", 0.75), ("河", "社", 0.0),
    ("公", "工", 0.92), ("头", "投", 0.92), ("南", "蓝", 0.75), ("真", "针", 0.92), ("针", "争", 0.75),
    ("四", "是", 0.75), ("a", "a", 1.0), ("a", "啊", 0.0),
])
def test_syllable_similarity(heard: str, expected: str, similarity: float) -> None:
    assert syllable_similarity(heard, expected) == similarity


def test_one_syllable_answers_must_sound_the_same() -> None:
    confirm = Menu.confirm()
    assert intent_of(confirm.match_text("事")) == "yes"  # shi4, as Vosk may write 是
    assert intent_of(confirm.match_text("四")) is None  # si4 is only alike


@pytest.mark.parametrize(("text", "intent"), [
    ("是", "yes"), ("是的", "yes"), ("对", "yes"), ("对的", "yes"), ("好的", "yes"), ("没错", "yes"),
    ("嗯", "yes"), ("是的是的", "yes"), ("对对对", "yes"),
    ("不是", "no"), ("不对", "no"), ("不要", "no"), ("不是的", "no"), ("不用了", "no"), ("不", "no"),
    ("一", "yes"), ("二", "no"), ("转人工", "agent"), ("再说一遍", "repeat"),
])
def test_confirmation(text: str, intent: str) -> None:
    assert intent_of(Menu.confirm().match_text(text)) == intent


def test_yes_is_not_found_inside_a_sentence() -> None:
    assert intent_of(Menu.confirm().match_text("我的电话是一三八")) is None


def test_dtmf() -> None:
    assert HOTLINE.match_dtmf("2") == IntentMatch("consult", 1.0, Evidence("dtmf", "2", "2", 0, 1), key="2",
                                                  transcript="2")
    assert intent_of(HOTLINE.match_dtmf("*")) == "repeat"
    assert HOTLINE.match_dtmf("9") == NoMatch("unknown_key", transcript="9")
    # a key wins over whatever was said at the same time
    assert intent_of(HOTLINE.match(dtmf="1", transcript="咨询")) == "complaint"
    assert intent_of(HOTLINE.match(transcript="咨询")) == "consult"


def test_builtin_intent_takes_the_menu_key() -> None:
    result = HOTLINE.match_text("转人工")
    assert isinstance(result, IntentMatch) and result.key == "0"
    assert result.evidence.kind == "builtin"


def test_threshold_is_per_menu() -> None:
    strict = Menu(SERVICES.options, threshold=0.95)
    assert intent_of(strict.match_text("社保")) == "social_insurance"
    low = strict.match_text("卵气")
    assert isinstance(low, NoMatch) and low.reason == "below_threshold"
    assert low.best is not None and low.best.intent == "heating"


def test_menu_validation() -> None:
    with pytest.raises(ValueError, match="option 'x': DTMF key '12' is not one of 0-9 \\* # A-D"):
        MenuOption("x", "12")
    with pytest.raises(ValueError, match="menu has a DTMF key used twice"):
        Menu((MenuOption("a", "1"), MenuOption("b", "1")))
    with pytest.raises(ValueError, match="unknown built-in intents \\['nope'\\]"):
        Menu((MenuOption("a", "1"),), builtins=("nope",))
    menu = menu_from_pairs([("a", "1", ["甲"]), ("b", None, ["乙"])])
    assert [o.ordinal for o in menu.options] == [1, None]
    assert set(BUILTIN_PHRASES) == {"agent", "repeat", "slower", "louder", "yes", "no"}


# -- the shared recordings' reference transcripts ----------------------------------------------------------------

TRANSCRIPTS = Path("/work/shared/audio/zh/transcripts.tsv")


def _rows() -> list[tuple[str, str, str]]:
    if not TRANSCRIPTS.is_file():
        pytest.skip("shared audio transcripts not present")
    rows = []
    for line in TRANSCRIPTS.read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            ident, text, label, _seconds = line.split("\t")
            rows.append((ident, text, label))
    return rows


KEY_OF = {o.key: o.intent for o in HOTLINE.options}


def test_shared_menu_utterances() -> None:
    checked = 0
    for ident, text, label in _rows():
        kind, _, value = label.partition(":")
        if kind != "menu":
            continue
        menu = Menu.confirm() if value in ("yes", "no") else HOTLINE
        expected = KEY_OF.get(value, value)
        assert intent_of(menu.match_text(text)) == expected, (ident, text)
        checked += 1
    assert checked >= 10


def test_shared_free_speech_never_picks_the_wrong_branch() -> None:
    matched = 0
    for ident, text, label in _rows():
        kind = label.split(":")[0]
        if kind not in ("complaint", "consult", "number"):
            continue
        got = intent_of(HOTLINE.match_text(text))
        allowed = {"complaint": {"complaint", None}, "consult": {"consult", None}, "number": {None}}[kind]
        assert got in allowed, (ident, text, got)
        matched += got is not None
    assert matched >= 3  # 反映, 请问, 问一下 in the callers' own words


def test_find_sounding_gives_the_windows_that_sound_like_a_phrase_best_first() -> None:
    from asr.intents import SoundHit, find_sounding

    assert find_sounding("楼道里有煤气位，厨房也是煤气味", "煤气味", 0.85) == [SoundHit(12, 15, 1.0), SoundHit(4, 7, 0.9733)]
    assert find_sounding("他晕到了", "晕倒", 0.92) == [SoundHit(1, 3, 0.96)]
    assert find_sounding("新的社保卡在哪里领", "煤气味", 0.85) == []


def test_fold_syllable_folds_the_usual_confusions_like_the_similarity() -> None:
    assert [fold_syllable(s) for s in ("shi", "si", "liang", "niang", "feng", "hen", "zhong")] == [
        "si", "si", "nian", "nian", "fen", "fen", "zon"]
    assert syllable_similarity("凉", "娘") == 0.75  # the pair fold_syllable makes alike
