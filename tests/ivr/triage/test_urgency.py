import pytest

from ivr.triage.gazetteer import Span
from ivr.triage.urgency import UrgencyLevel, detect_urgency

E, U, N = UrgencyLevel.EMERGENCY, UrgencyLevel.URGENT, UrgencyLevel.NORMAL


@pytest.mark.parametrize(
    "text, level, kind",
    [
        ("我家厨房有股煤气味特别冲", E, "gas"),
        ("楼道里燃气泄漏了", E, "gas"),
        ("闻到一股很浓的天然气", E, "gas"),
        ("对面楼着火了好大的烟", E, "fire"),
        ("插座冒烟了", E, "fire"),
        ("电线冒火花了", E, "fire"),
        ("我老公喝了酒打我", E, "violence"),
        ("楼下有人拿刀在街上追人", E, "violence"),
        ("邻居家暴孩子一直在哭", E, "violence"),
        ("超市门口有个老人晕倒了", E, "danger"),
        ("老人躺在地上好像没气了", E, "danger"),
        ("我被困在电梯里出不去", E, "danger"),
        ("有个孩子掉进河里了", E, "danger"),
        ("有人站在楼顶上要跳楼", E, "self_harm"),
        ("楼下自来水管爆了路上全是水", U, "flooding"),
        ("西城区金融街附近的井盖丢了很危险", U, "manhole"),
        ("路面塌陷了一个大坑", U, "collapse"),
        ("电线掉在地上了", U, "electric"),
    ],
)
def test_hazards_are_found_with_their_level(text: str, level: UrgencyLevel, kind: str) -> None:
    r = detect_urgency(text)
    assert r.level == level
    assert kind in [h.kind for h in r.hits]
    assert r.transfer_now == (level == E)
    for h in r.hits:
        assert text[h.evidence.start:h.evidence.end] == h.evidence.text


@pytest.mark.parametrize(
    "text",
    [
        "没有着火就是有点味",
        "没闻到煤气味就是灶打不着火",
        "着火倒没有",
        "没有人晕倒",
        "我要打人工服务",
        "请打我电话联系",
        "烟囱天天冒黑烟",
        "我家暖气一点都不热",
        "电梯里经常困人物业也不找人检修",
        "我家天然气突然没气了做不了饭",
    ],
)
def test_negated_or_unrelated_mentions_do_not_count(text: str) -> None:
    r = detect_urgency(text)
    assert r.level == N, r
    assert all(h.status == "negated" for h in r.hits)


def test_negated_hit_is_kept_for_the_operator() -> None:
    r = detect_urgency("没闻到煤气味")
    assert [(h.kind, h.status, h.evidence) for h in r.hits] == [("gas", "negated", Span(3, 6, "煤气味"))]
    assert r.reasons == ()


def test_hypothetical_is_a_risk_not_an_emergency() -> None:
    r = detect_urgency("消防通道上停满了车万一着火消防车都进不来")
    assert r.level == U and r.hits[0].status == "hypothetical" and not r.transfer_now
    r = detect_urgency("楼下装修的把承重墙砸了楼会不会塌")
    assert r.level == U and r.hits[0].status == "hypothetical"


def test_resolved_fire_is_only_urgent() -> None:
    r = detect_urgency("厨房着火了已经扑灭了")
    assert r.level == U and r.hits[0].status == "resolved"


def test_highest_level_wins_and_reasons_in_order() -> None:
    r = detect_urgency("楼下水管爆了还有一股煤气味")
    assert r.level == E
    assert r.reasons == ("跑水积水", "燃气泄漏")


def test_span_in_spaced_transcript() -> None:
    text = "厨房 有 煤气 味"
    r = detect_urgency(text)
    assert r.level == E
    assert r.hits[0].evidence == Span(5, 9, "煤气 味")


def test_later_negation_does_not_cancel_an_earlier_real_hazard() -> None:
    r = detect_urgency("楼道里有人晕倒了没有人管")
    assert r.level == E


@pytest.mark.parametrize(
    "heard, kind, term",
    [
        ("我闻到楼道里有很大的煤气位", "gas", "煤气味"),  # 位 wei4 for 味 wei4
        ("厨房有股没气味", "gas", "煤气味"),
        ("楼道里然气泄露了", "gas", "燃气泄漏"),
        ("闻到一股煤汽味", "gas", "煤气味"),
        ("楼里好像有燃气泄楼", "gas", "燃气泄漏"),
        ("对面楼着伙了", "fire", "着火了"),
        ("我家失伙了", "fire", "失火"),
        ("楼下起伙了", "fire", "起火了"),
        ("楼道里毛烟了", "fire", "冒烟了"),
        ("邻居家爆孩子", "violence", "家暴"),
        ("有人在街上砍仁", "violence", "砍人"),
        ("小区里有人殴达老人", "violence", "殴打"),
        ("超市门口老人晕到了", "danger", "晕倒"),
        ("有个老人婚迷了", "danger", "昏迷"),
        ("我被捆在电梯里", "danger", "困在电梯"),
        ("孩子处电了", "danger", "触电"),
        ("有人要挑楼", "self_harm", "跳楼"),
    ],
)
def test_a_misheard_emergency_term_that_sounds_the_same_puts_the_caller_through(heard: str, kind: str,
                                                                                term: str) -> None:
    r = detect_urgency(heard)
    assert r.level == E and r.transfer_now and r.ask == ""
    [hit] = [h for h in r.hits if h.kind == kind]
    assert hit.status == "present" and hit.heard_as == term
    assert heard[hit.evidence.start:hit.evidence.end] == hit.evidence.text


@pytest.mark.parametrize(
    "heard, kind, term",
    [
        ("楼道里有股梅奇味", "gas", "煤气味"),  # 奇 qi2 for 气 qi4: a tone away, and 梅 only sounds like 煤
        ("闻到楼道里有煤其为", "gas", "煤气味"),
        ("有人落谁了", "danger", "落水"),  # 谁 shui2 for 水 shui3
        ("他说他要自傻", "self_harm", "自杀"),
        ("有个人在河边好像要条楼", "self_harm", "跳楼"),
    ],
)
def test_a_term_only_close_in_sound_is_unsure_and_names_the_hazard_to_ask_about(heard: str, kind: str,
                                                                               term: str) -> None:
    r = detect_urgency(heard)
    assert r.level == N and not r.transfer_now and r.reasons == ()
    assert r.ask == kind
    [hit] = r.hits
    assert (hit.status, hit.heard_as) == ("unsure", term)


def test_misheard_terms_keep_negation_and_hypotheticals() -> None:
    assert detect_urgency("我没有闻到煤气位").level == N
    assert detect_urgency("我没有闻到煤气位").ask == ""
    hypothetical = detect_urgency("万一着伙了怎么办")
    assert hypothetical.level == U and [h.status for h in hypothetical.hits] == ["hypothetical"]


def test_an_emergency_already_found_asks_nothing() -> None:
    r = detect_urgency("楼下着火了，楼道里还有股梅奇味")
    assert r.transfer_now and r.ask == ""


def test_everyday_complaints_raise_no_question_by_sound() -> None:
    """Every example of the dispatch catalogue and its evaluation set (542 everyday complaints and questions): no
    term found by sound, so no caller is asked about an emergency they never mentioned (拿到 is not 拿刀)."""
    from ivr.triage.dispatch import DEFAULT_EVAL_SET, load_dispatch_catalogue, load_labelled

    texts = [e for c in load_dispatch_catalogue().categories for e in c.examples]
    texts += [t for t, _ in load_labelled(DEFAULT_EVAL_SET)]
    assert len(texts) > 500
    by_sound = [t for t in texts if any(h.heard_as for h in detect_urgency(t).hits)]
    assert by_sound == []
