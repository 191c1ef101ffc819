"""The one text normaliser: numbers, dates, times and money as people say them; phone and ticket numbers digit by digit."""
from __future__ import annotations

import pytest

from prompts.numbers import cardinal, digits, normalise


@pytest.mark.parametrize("written,said", [
    # dates and times by meaning
    ("每年11月15日至次年3月15日", "每年十一月十五日至次年三月十五日"),
    ("2026年2月2日", "二零二六年二月二日"),
    ("8:30", "八点半"),
    ("上午8:00到12:00", "上午八点到十二点"),
    ("14:05", "十四点零五分"),
    ("2:15", "两点十五分"),
    ("工作时间8:30-17:00", "工作时间八点半到十七点"),
    ("下午2点", "下午两点"),
    # money, counts, measures
    ("120元", "一百二十元"),
    ("2元", "两元"),
    ("12.5元", "十二元五角"),
    ("0.05元", "五分"),
    ("3.05元", "三元零五分"),
    ("¥15000", "一万五千元"),
    ("罚款2000元", "罚款两千元"),
    ("共有11位", "共有十一位"),
    ("前面还有2位", "前面还有两位"),
    ("预计等待25分钟", "预计等待二十五分钟"),
    ("2小时", "两小时"),
    ("第2位", "第二位"),
    ("3.5公里", "三点五公里"),
    ("30%", "百分之三十"),
    ("3-5个工作日", "三到五个工作日"),
    ("2到3天", "两到三天"),
    ("满105天", "满一百零五天"),
    # house, building, floor and room numbers
    ("朝阳路128号", "朝阳路一百二十八号"),
    ("3号楼2单元", "三号楼二单元"),
    ("12层", "十二层"),
    ("1201室", "幺二零幺室"),
    # phone, ticket and service numbers digit by digit with 幺; keys said plainly
    ("12345市民服务热线", "幺二三四五市民服务热线"),
    ("工单号20261128001", "工单号二零二六幺幺二八零零幺"),
    ("请拨打13800138000", "请拨打幺三八零零幺三八零零零"),
    ("010-65123456", "零幺零，六五幺二三四五六"),
    ("110", "一百一十"),
    ("报警请拨110", "报警请拨幺幺零"),
    ("急救电话120", "急救电话幺二零"),
    ("老年人请按0。投诉举报请按1，政策咨询请按2", "老年人请按零。投诉举报请按一，政策咨询请按二"),
    ("没有数字的句子。", "没有数字的句子。"),
])
def test_normalise_table(written: str, said: str) -> None:
    assert normalise(written) == said


@pytest.mark.parametrize("n,counting,said", [
    (0, False, "零"), (2, True, "两"), (2, False, "二"), (10, False, "十"), (15, False, "十五"), (20, True, "二十"),
    (105, False, "一百零五"), (110, False, "一百一十"), (200, False, "两百"), (1010, False, "一千零一十"),
    (10005, False, "一万零五"), (12345, False, "一万两千三百四十五"), (20000, False, "两万"),
    (1_000_100, False, "一百万零一百"),
])
def test_cardinal(n: int, counting: bool, said: str) -> None:
    assert cardinal(n, counting) == said


def test_digits_and_their_errors() -> None:
    assert digits("2026", yao=False) == "二零二六"
    assert digits("11") == "幺幺"
    with pytest.raises(ValueError, match=r"^'1a' is not a string of digits 0-9$"):
        digits("1a")
    with pytest.raises(ValueError, match=r"^100000000 is out of range 0..99999999$"):
        cardinal(100_000_000)


def test_no_digit_is_left_in_the_shipped_catalogue() -> None:
    from pathlib import Path

    from prompts import load_catalogue

    catalogue = load_catalogue(Path(__file__).resolve().parents[2] / "prompts" / "catalogue.yaml")
    for prompt in catalogue.prompts.values():
        for style in ("standard", "elderly"):
            said = normalise(prompt.for_style(style))
            assert not any(c.isdigit() for c in said), (prompt.id, said)
    assert normalise(catalogue["answer_heating"].text).startswith("北京市的供暖季为每年十一月十五日至次年三月十五日")


def test_espeak_reads_the_normalised_text() -> None:
    from prompts.voice_espeak import to_pinyin

    assert to_pinyin("11月15日") == to_pinyin("十一月十五日") == "shi2 yi1 yue4 shi2 wu3 ri4"
    assert to_pinyin("请按1") == "qing3 an4 yi1"
