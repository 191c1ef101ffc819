"""Mandarin transcript normalisation: joining, width folding, numerals to digits (table-driven)."""
from __future__ import annotations

import pytest

from asr.text import NumberSpan, join_words, normalize, numerals_to_digits, parse_cardinal, to_halfwidth


@pytest.mark.parametrize(("words", "joined"), [
    ("我 要 反映 一下", "我要反映一下"),
    (["我", "要", "投诉"], "我要投诉"),
    ("hello world", "hello world"),
    ("我 用 wifi 上网", "我用wifi上网"),
    ("打 12345 热线", "打12345热线"),
    ("APP 里 的 iPhone 版本", "APP里的iPhone版本"),
    ("  多  个   空格 ", "多个空格"),
    ("[unk] 你好 [unk]", "你好"),
    (["new york", "城市"], "new york城市"),
    ("", ""),
    # Korean is written with spaces between words (the test model's transcripts)
    ("안녕 하세요", "안녕 하세요"),
    (["민원", "접수", "번호", "는"], "민원 접수 번호 는"),
    ("전화 번호 010 1234", "전화 번호 010 1234"),
    ("서울 시청 KTX 역", "서울 시청 KTX 역"),
    # digits and Latin keep their spaces; beside an ideograph they join
    ("12 34", "12 34"),
    ("wifi 6", "wifi 6"),
    ("第 3 号", "第3号"),
    # mixed scripts: only the gaps touching an ideograph close
    ("我 说 안녕 하세요", "我说안녕 하세요"),
    ("안녕 你好 세요", "안녕你好세요"),
    # full-width and CJK punctuation join like ideographs; kana too
    ("你好 ， 我 要 投诉 。", "你好，我要投诉。"),
    ("OK ！ 好", "OK！好"),
    ("「 热线 」", "「热线」"),
    ("です ね", "ですね"),
])
def test_join_words(words: str | list[str], joined: str) -> None:
    assert join_words(words) == joined


@pytest.mark.parametrize(("text", "half"), [
    ("ＡＢＣ１２３", "ABC123"),
    ("电话：１３８", "电话:138"),
    ("Ｈｅｌｌｏ\u3000ｗｏｒｌｄ", "Hello world"),
    ("你好。", "你好。"),  # the ideographic full stop is not an ASCII form
    ("～！＠＃", "~!@#"),
])
def test_to_halfwidth(text: str, half: str) -> None:
    assert to_halfwidth(text) == half


@pytest.mark.parametrize(("numeral", "value"), [
    ("一", 1), ("十", 10), ("十二", 12), ("二十", 20), ("一百二十三", 123), ("一百零五", 105), ("一百一十", 110),
    ("两千零五", 2005), ("一千零一", 1001), ("三万五", 35000), ("一百五", 150), ("两千三", 2300),
    ("一万零五百", 10500), ("十二万三千四百五十六", 123456), ("两亿", 200_000_000), ("三亿五千万", 350_000_000),
    ("百", None), ("十百", None), ("一二", None), ("二十三四", None), ("万", None), ("拐十", None), ("", None),
])
def test_parse_cardinal(numeral: str, value: int | None) -> None:
    assert parse_cardinal(numeral) == value


NUMBERS = [
    # phone numbers read digit by digit, with 幺 / 两 / 洞 / 拐 / 勾
    ("我的电话是一三八一二三四五六七八", "我的电话是13812345678"),
    ("我的电话是幺三八幺二三四五六七八", "我的电话是13812345678"),
    ("幺三九洞洞洞洞幺二三四", "13900001234"),
    ("幺八六两两拐拐勾勾洞幺", "18622779901"),
    ("打幺幺零", "打110"),
    # ticket numbers and years
    ("工单号是二零二六一一二八零零一", "工单号是20261128001"),
    ("二零二六年十一月二十八号", "2026年11月28号"),
    ("二〇二五年", "2025年"),
    # house numbers and addresses
    ("一百二十三号", "123号"),
    ("和平里东街二十八号院三号楼五单元三零二室", "和平里东街28号院3号楼5单元302室"),
    ("住在一楼", "住在1楼"),
    ("十号线", "10号线"),
    ("幺零三路公交车", "103路公交车"),
    # counted numbers, money, decimals, percentages, times
    ("退三万五", "退35000"),
    ("卡里还有一千二百元", "卡里还有1200元"),
    ("两点来的", "2点来的"),
    ("等了十分钟", "等了10分钟"),
    ("晚上十二点半", "晚上12点半"),
    ("大概三点五公里", "大概3.5公里"),
    ("比例是百分之五十", "比例是50%"),
    ("五块钱", "5块钱"),
    ("一点半", "1点半"),
    ("下午一点五十分", "下午1点50分"),
    ("三点十五分", "3点15分"),
    # words that only contain numeral characters stay as they are
    ("我们一起去", "我们一起去"),
    ("统一处理", "统一处理"),
    ("有一些问题", "有一些问题"),
    ("我想问一下", "我想问一下"),
    ("唯一的办法", "唯一的办法"),
    ("万一出事了", "万一出事了"),
    ("千万别挂", "千万别挂"),
    ("十分感谢", "十分感谢"),
    ("说慢一点", "说慢一点"),
    ("老百姓的事", "老百姓的事"),
    ("一路上", "一路上"),
    ("第一个", "第一个"),
    ("一个星期了", "一个星期了"),
    ("三四天没人管", "三四天没人管"),
    ("一两个人", "一两个人"),
    ("十一二岁的孩子", "十一二岁的孩子"),
    ("一一解答", "一一解答"),
    ("路上有个洞", "路上有个洞"),
    ("往左拐", "往左拐"),
    ("十字路口", "十字路口"),
    ("五星级", "五星级"),
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_numerals_to_digits(text: str, expected: str) -> None:
    assert numerals_to_digits(text).text == expected


def test_spans_point_into_the_output() -> None:
    r = numerals_to_digits("住在三号楼，电话幺三八一二三四五六七八，面积一百二十点五平米")
    assert r.text == "住在3号楼，电话13812345678，面积120.5平米"
    assert r.numbers == (
        NumberSpan(start=2, end=3, value="3", source="三", kind="digit"),
        NumberSpan(start=8, end=19, value="13812345678", source="幺三八一二三四五六七八", kind="digits"),
        NumberSpan(start=22, end=27, value="120.5", source="一百二十点五", kind="decimal"),
    )
    for span in r.numbers:
        assert r.text[span.start:span.end] == span.value
    assert r.digits(min_length=7) == ["13812345678"]


def test_normalize_vosk_output() -> None:
    r = normalize("我 的 电话 是 幺 三 八 一 二 三 四 五 六 七 八")
    assert r.text == "我的电话是13812345678"
    assert r.numbers[0].source == "幺三八一二三四五六七八"
    assert normalize(["工单号", "是", "二零二六一一二八零零一"]).text == "工单号是20261128001"
    assert normalize("ＡＰＰ\u3000里 的 一百二十三 号").text == "APP里的123号"


def test_shared_transcripts_numbers() -> None:
    """The reference texts of the shared Mandarin fixtures carry the numbers their labels give."""
    from pathlib import Path

    tsv = Path("/work/shared/audio/zh/transcripts.tsv")
    if not tsv.is_file():
        pytest.skip("shared audio transcripts not present")
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    numbers = [(text, label.split(":", 1)[1]) for _id, text, label, _s in rows if label.startswith("number:")]
    assert numbers
    for text, value in numbers:
        assert normalize(text).digits(min_length=5) == [value]
    for _id, text, label, _s in rows:
        if not label.startswith("number:"):
            assert normalize(text).digits(min_length=5) == []
