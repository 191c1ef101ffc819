"""Numbers, dates, times and money written out as Mandarin speakers say them: one normaliser for every prompt.

`normalise` runs on every catalogue text (and knowledge-base answer) before it is rendered, whatever the voice;
`cardinal` and `digits` are the same readings for numbers that are only known during a call (queue position,
minutes, ticket numbers), which `prompts.compose` turns into pieces. The readings:

- dates and times by meaning: 11月15日 -> 十一月十五日, 2026年 -> 二零二六年, 8:30 -> 八点半, 14:05 -> 十四点零五分;
- counts and money as numbers, with 两 for 2 before a measure word: 120元 -> 一百二十元, 2位 -> 两位,
  12.5元 -> 十二元五角, 3.5公里 -> 三点五公里, 30% -> 百分之三十, 3-5天 -> 三到五天;
- house, building and floor numbers as numbers (朝阳路128号 -> 一百二十八号, 3号楼 -> 三号楼), rooms digit by digit;
- phone, ticket and service numbers (five digits or more, or a leading 0) digit by digit with 幺 for 1:
  12345 -> 幺二三四五, and any number after 拨打/电话/热线 (拨打110 -> 拨打幺幺零); a key to press is one digit said
  plainly: 请按1 -> 请按一.
"""
from __future__ import annotations

import re

__all__ = ["MAX_CARDINAL", "cardinal", "digits", "normalise"]

MAX_CARDINAL = 99_999_999
_DIGIT = "零一二三四五六七八九"
_PHONE_DIGIT = "零幺二三四五六七八九"

# measure words after which 2 is 两 (两位, 两天, 两点, 两万元); other units (月, 日, 号, 楼, 层 ...) keep 二
_COUNTING_UNITS = ("小时", "分钟", "公里", "公斤", "平方米", "个月", "位", "个", "名", "人", "次", "件", "条", "项",
                   "张", "份", "本", "家", "种", "台", "辆", "天", "周", "年", "岁", "元", "块", "角", "万", "千", "百",
                   "倍", "点", "分", "秒", "米", "斤", "户", "间", "套", "趟", "遍", "句", "步")
_PLAIN_UNITS = ("单元", "月", "日", "号", "楼", "层", "栋", "幢", "期", "级", "路", "区", "排", "座", "床", "章", "节")
_COUNTING = "|".join(sorted(_COUNTING_UNITS, key=len, reverse=True))
_PLAIN = "|".join(sorted(_PLAIN_UNITS, key=len, reverse=True))

_TIME = r"(\d{1,2})[:：](\d{2})(?!\d)"


def digits(value: str, yao: bool = True) -> str:
    """``"20261128001"`` -> 二零二六幺幺二八零零幺: one digit at a time, 1 as 幺 (or 一 with ``yao=False``)."""
    if not value or not value.isdigit() or not value.isascii():
        raise ValueError(f"{value!r} is not a string of digits 0-9")
    table = _PHONE_DIGIT if yao else _DIGIT
    return "".join(table[int(d)] for d in value)


def cardinal(n: int, counting: bool = False) -> str:
    """`n` (0..99,999,999) as a Mandarin number: 十五, 一百零五, 两千, 一万零五; `counting`: 2 is 两 (两位)."""
    if not 0 <= n <= MAX_CARDINAL:
        raise ValueError(f"{n} is out of range 0..{MAX_CARDINAL}")
    if n == 0:
        return "零"
    if n == 2 and counting:
        return "两"
    high, low = divmod(n, 10_000)
    out = ""
    if high:
        head = _below_10000(high, first=True)
        out = ("两" if head == "二" else head) + "万"
        if low and low < 1000:
            out += "零"
    if low:
        out += _below_10000(low, first=not high)
    return out


def _below_10000(n: int, first: bool) -> str:
    out = ""
    zero_pending = False
    for unit, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = (n // unit) % 10
        if d == 0:
            zero_pending = bool(out)
            continue
        if zero_pending:
            out += "零"
            zero_pending = False
        if unit == 10 and d == 1 and not out and first:
            out += "十"  # 十五, not 一十五, at the head of a number
            continue
        out += ("两" if d == 2 and unit >= 100 else _DIGIT[d]) + name
    return out


def _number(text: str, counting: bool = False) -> str:
    """A written number, perhaps with a decimal part: 3.5 -> 三点五; too long for a cardinal: digit by digit."""
    whole, _, frac = text.partition(".")
    if int(whole) > MAX_CARDINAL:
        return digits(whole, yao=False) + ("点" + digits(frac, yao=False) if frac else "")
    if frac:
        return cardinal(int(whole)) + "点" + digits(frac, yao=False)
    return cardinal(int(whole), counting)


def _time(hour_text: str, minute_text: str) -> str:
    hour, minute = int(hour_text), int(minute_text)
    said = cardinal(hour, counting=True) + "点"
    if minute == 30:
        return said + "半"
    if minute == 0:
        return said
    return said + ("零" if minute < 10 else "") + cardinal(minute) + "分"


def _money(yuan_text: str, cents: str | None) -> str:
    """120.5 -> 一百二十元五角, 0.05 -> 五分: money is said in 元, 角 and 分."""
    cents = (cents or "").ljust(2, "0")
    yuan, jiao, fen = int(yuan_text), int(cents[0]), int(cents[1])
    out = _number(yuan_text, counting=True) + "元" if yuan or not (jiao or fen) else ""
    if jiao:
        out += cardinal(jiao, counting=True) + "角"
    if fen:
        out += ("零" if yuan and not jiao else "") + cardinal(fen, counting=True) + "分"
    return out


def _generic(m: re.Match[str]) -> str:
    ordinal, number, unit = m.group(1), m.group(2), m.group(3) or ""
    if unit == "室" or (not unit and "." not in number and (len(number) >= 5 or (len(number) > 1 and number[0] == "0"))):
        return ordinal + digits(number) + unit  # phone, ticket, service and room numbers
    if not unit and not ordinal:  # the first number of a range takes the second's unit: 2到3天 -> 两到三天
        ahead = _RANGE_UNIT.match(m.string, m.end())
        unit_for_reading = ahead.group(1) if ahead else ""
        return _number(number, bool(unit_for_reading) and re.fullmatch(_COUNTING, unit_for_reading) is not None)
    counting = not ordinal and bool(unit) and re.fullmatch(_COUNTING, unit) is not None
    return ordinal + _number(number, counting) + unit


# phone numbers with an area code or groups: 010-12345678, 138-0013-8000 -> digit by digit, a pause per group
_PHONE = re.compile(r"(?<![\d.])(0\d{2,3}|1\d{2})-(\d{3,8})(?:-(\d{4}))?(?![\d.])")
_DIAL = re.compile(r"(拨打|致电|电话|号码|热线|拨)\s*(\d+)(?![\d.])")
_TIME_RANGE = re.compile(_TIME + r"\s*[-~～—–至到]\s*" + _TIME)
_TIME_ONE = re.compile(_TIME)
_RANGE = re.compile(r"(?<=\d)\s*[-~～—–]\s*(?=\d)")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
_MONEY = re.compile(r"[¥￥]\s*(\d+)(?:\.(\d{1,2}))?元?|(?<![\d.])(\d+)(?:\.(\d{1,2}))?(?=元)元")
_YEAR = re.compile(r"(?<![\d.])(\d{4})(?=年)")
_KEY = re.compile(r"(?<=按)(\d)(?!\d)")
_GENERIC = re.compile(rf"(第?)(\d+(?:\.\d+)?)({_COUNTING}|{_PLAIN}|室)?")
_RANGE_UNIT = re.compile(rf"[到至]\d+(?:\.\d+)?({_COUNTING}|{_PLAIN})")


def normalise(text: str) -> str:
    """Every Arabic number in `text` written in Chinese characters the way it is said (see the module docs)."""
    text = _PHONE.sub(lambda m: "，".join(digits(g) for g in m.groups() if g), text)
    text = _DIAL.sub(lambda m: m[1] + digits(m[2]), text)
    text = _TIME_RANGE.sub(lambda m: _time(m[1], m[2]) + "到" + _time(m[3], m[4]), text)
    text = _TIME_ONE.sub(lambda m: _time(m[1], m[2]), text)
    text = _RANGE.sub("到", text)
    text = _PERCENT.sub(lambda m: "百分之" + _number(m.group(1)), text)
    text = _MONEY.sub(lambda m: _money(m[1], m[2]) if m[1] is not None else _money(m[3], m[4]), text)
    text = _YEAR.sub(lambda m: digits(m.group(1), yao=False), text)
    text = _KEY.sub(lambda m: _DIGIT[int(m.group(1))], text)
    return _GENERIC.sub(_generic, text)
