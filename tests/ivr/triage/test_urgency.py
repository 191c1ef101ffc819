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
