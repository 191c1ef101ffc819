"""Auto-fill of a ticket from the transcript: the caller's name, a callback number and the address.

Every field carries its evidence span (character offsets into the transcript as given) so the console can
highlight it and the operator can accept or correct it. Numbers spoken as Chinese numerals (一三八, 幺, 两) are
read with :func:`asr.text.numerals_to_digits`.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from asr.text import numerals_to_digits
from ivr.logs import mask_number
from ivr.triage.gazetteer import SUFFIXES, Gazetteer, PlaceMatch, Span, TextView, default_gazetteer

__all__ = ["CallerName", "PhoneNumber", "Address", "AutoFill", "extract_autofill", "SURNAMES"]

log = logging.getLogger(__name__)

SURNAMES_COMPOUND = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "尉迟", "公孙", "夏侯", "令狐", "长孙", "端木", "司徒")
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金"
    "石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章"
    "鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾"
    "尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛"
    "仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹"
) | frozenset(SURNAMES_COMPOUND)
TITLES = ("先生", "女士", "小姐", "阿姨", "大爷", "大妈", "大姐", "大哥", "老师", "师傅", "奶奶", "爷爷")

_NAME_CUES = re.compile(r"(?:我的名字叫|我名字叫|我的名字是|名字叫|名字是|本人叫|我叫|我是)")
_SURNAME_CUES = re.compile(r"(?:免贵姓|我姓|本人姓|姓)")
_PHONE_CUES = ("电话", "手机", "号码", "联系方式", "联系", "打", "拨", "回电", "回拨")
_NOT_PHONE_CUES = ("工单", "单号", "编号", "身份证", "卡号", "订单", "车牌", "账号", "合同")
_RUN = re.compile(r"\d(?:[\d-]*\d)?")
_ADDRESS_CUES = re.compile(r"住在|家住|住址是|住址|地址是|地址|家在|位于|我在|就在|住")

_CN = "一二三四五六七八九十两零〇"
_CN_VALUE = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "零": 0, "〇": 0}
_NAMECH = r"[^\W\d_我你他她的了在是有就都也还和把被给让吗呢吧啊这那个说要想太很不没住电话号楼屋]"
_COMMUNITY = r"(?:小区|社区|家园|花园|公寓|大厦|新村|苑|园|里|村|庄|院|城|府|湾|寓)(?:小区|社区|家园|[东西南北中]区|[东西南北中]里)*"
# an address goes from coarse to fine: a part may not be coarser than the one before it
_RANK = {"district": 0, "area": 1, "road": 2, "community": 3, "number": 4, "room": 5}
_PARTS = [
    ("number", re.compile(rf"(?:\d+|[{_CN}]{{1,3}})(?:号院|号楼|号门|栋|幢|座|单元|门|层|号|室|区|排|期|条|巷)")),
    ("room", re.compile(r"\d{3,4}(?![\d号层单元室])")),
    ("road", re.compile(rf"{_NAMECH}{{2,6}}?(?:大街|路|街|胡同|巷|大道|道)(?!办|道)")),
    ("community", re.compile(rf"{_NAMECH}{{1,7}}?{_COMMUNITY}")),
]
_AFTER_AREA = re.compile(rf"{_NAMECH}{{0,7}}?{_COMMUNITY}")  # 回龙观 + 龙泽苑: the area's own name may start it


@dataclass(frozen=True)
class CallerName:
    """The caller's name. ``given`` is empty when only the surname was said; ``display`` is what the operator
    sees (张伟, 李女士, or 李先生/女士 when the title is unknown)."""

    surname: str
    given: str
    display: str
    evidence: Span


@dataclass(frozen=True)
class PhoneNumber:
    """A callback number as digits; kind is "mobile" or "landline"."""

    digits: str
    kind: str
    evidence: Span

    @property
    def masked(self) -> str:
        return mask_number(self.digits)


@dataclass(frozen=True)
class Address:
    """An address: ``text`` as said with numbers in digits, ``full`` with the district put in front when the
    caller only named an area; ``parts`` are (kind, text) pieces (district, area, road, community, number, room)."""

    text: str
    full: str
    district: str | None
    area: str | None
    parts: tuple[tuple[str, str], ...]
    evidence: Span


@dataclass(frozen=True)
class AutoFill:
    """What could be filled in from the transcript (None where nothing was found)."""

    name: CallerName | None = None
    phone: PhoneNumber | None = None
    address: Address | None = None


# -------------------------------------------------------------------------------------------------- name
_pos_lock = threading.Lock()
_pos_tokenizer = None


def _pos_cut(text: str) -> list[tuple[str, str]]:
    global _pos_tokenizer
    with _pos_lock:
        if _pos_tokenizer is None:
            import jieba.posseg

            from asr.textclass import tokenizer

            _pos_tokenizer = jieba.posseg.POSTokenizer(tokenizer())
        tok = _pos_tokenizer
    return [(p.word, p.flag) for p in tok.lcut(text)]


def _surname_at(text: str, i: int) -> str:
    for s in SURNAMES_COMPOUND:
        if text.startswith(s, i):
            return s
    return text[i] if i < len(text) and text[i] in SURNAMES else ""


def _title_after(text: str, i: int) -> str:
    return next((t for t in TITLES if text.startswith(t, i)), "")


def _name(view: TextView) -> CallerName | None:
    text = view.text
    for m in _NAME_CUES.finditer(text):
        i = m.end()
        surname = _surname_at(text, i)
        if not surname:
            continue
        title = _title_after(text, i + len(surname))
        if title:
            end = i + len(surname) + len(title)
            return CallerName(surname, "", surname + title, view.span(i, end))
        words = _pos_cut(text[i : i + 8])
        if not words:
            continue
        first, flag = words[0]
        if first.startswith(surname) and 2 <= len(first) <= len(surname) + 2 and flag.startswith("nr"):
            name = first
        elif first == surname and len(words) > 1 and 1 <= len(words[1][0]) <= 2 and words[1][1] in ("nr", "nrt", "nrfg", "ng", "n"):
            name = first + words[1][0]
        elif m.group() != "我是" and len(first) in (2, 3) and first.startswith(surname):
            name = first  # "我叫" is a strong cue even when jieba does not tag the name
        else:
            continue
        end = i + len(name)
        return CallerName(surname, name[len(surname) :], name, view.span(i, end))
    for m in _SURNAME_CUES.finditer(text):
        i = m.end()
        surname = _surname_at(text, i)
        if not surname:
            continue
        end = i + len(surname)
        title = _title_after(text, end)
        if not title:
            # "我姓李，李女士" / "姓李叫李明"
            later = re.compile(re.escape(surname) + "(" + "|".join(TITLES) + ")").search(text, end)
            title = later.group(1) if later and later.start() - end <= 4 else ""
        display = surname + (title or "先生/女士")
        start = m.start() if m.group() != "姓" else i - 1
        return CallerName(surname, "", display, view.span(start, end + len(_title_after(text, end))))
    return None


# -------------------------------------------------------------------------------------------------- numbers
class _Digits:
    """The transcript view with numerals as digits, mapped back to the view's offsets."""

    def __init__(self, view: TextView) -> None:
        norm = numerals_to_digits(view.text)
        self.text = norm.text
        self.view = view
        starts: list[int] = []
        ends: list[int] = []
        src = 0
        pos = 0
        for n in norm.numbers:
            while pos < n.start:
                starts.append(src)
                ends.append(src + 1)
                pos += 1
                src += 1
            for _ in range(n.start, n.end):
                starts.append(src)
                ends.append(src + len(n.source))
            pos = n.end
            src += len(n.source)
        while pos < len(self.text):
            starts.append(src)
            ends.append(src + 1)
            pos += 1
            src += 1
        if src != len(view.text):  # numerals_to_digits changed more than numerals: keep the view as is
            log.debug("numeral mapping mismatch; reading numbers without conversion")
            self.text = view.text
            starts = list(range(len(view.text)))
            ends = [i + 1 for i in starts]
        self._starts = starts
        self._ends = ends

    def span(self, start: int, end: int) -> Span:
        return self.view.span(self._starts[start], self._ends[end - 1])


def _phone_kind(d: str) -> str | None:
    if len(d) == 11 and re.fullmatch(r"1[3-9]\d{9}", d):
        return "mobile"
    if len(d) == 8 and d[0] not in "01":
        return "landline"
    if len(d) == 11 and d.startswith("010") and d[3] not in "01":
        return "landline"
    if len(d) == 12 and re.fullmatch(r"0[3-9]\d{2}\d{8}", d):
        return "landline"
    return None


def _phone(dv: _Digits) -> PhoneNumber | None:
    text = dv.text
    best: tuple[int, PhoneNumber] | None = None
    for m in _RUN.finditer(text):
        digits = m.group().replace("-", "")
        kind = _phone_kind(digits)
        if kind is None:
            continue
        before = text[max(0, m.start() - 8) : m.start()]
        if any(c in before for c in _NOT_PHONE_CUES):
            continue
        cued = any(c in before for c in _PHONE_CUES)
        if not cued and kind == "landline":
            continue  # eight bare digits are as likely a house or card number
        rank = (2 if cued else 0) + (1 if kind == "mobile" else 0)
        phone = PhoneNumber(digits, kind, dv.span(m.start(), m.end()))
        if best is None or rank > best[0]:
            best = (rank, phone)
    return best[1] if best else None


# -------------------------------------------------------------------------------------------------- address
def _to_digits(piece: str) -> str:
    out = []
    for ch in piece:
        out.append(str(_CN_VALUE[ch]) if ch in _CN_VALUE else ch)
    s = "".join(out)
    return re.sub(r"^(\d)十(\d)?", lambda m: str(int(m.group(1)) * 10 + int(m.group(2) or 0)), s).replace(
        "十", "10"
    ) if "十" in s else s


def _parse_address(dv: _Digits, start: int, places: dict[int, PlaceMatch]) -> tuple[int, list[tuple[str, str]]]:
    text = dv.text
    pos = start
    parts: list[tuple[str, str]] = []
    while pos < len(text):
        place = places.get(pos)
        if place is not None:
            kind = "district" if place.place.kind == "区" else "area"
            parts.append((kind, text[pos : place.clean_end]))
            pos = place.clean_end
            continue
        if text.startswith("附近", pos) or text.startswith("旁边", pos):
            break
        if parts and parts[-1][0] == "area" and not parts[-1][1].endswith(SUFFIXES):
            m = _AFTER_AREA.match(text, pos)
            if m and m.end() > pos:
                kind, piece = parts.pop()
                parts.append(("community", piece + m.group()))
                pos = m.end()
                continue
        last = _RANK[parts[-1][0]] if parts else -1
        for kind, rx in _PARTS:
            if _RANK[kind] < last:
                continue
            m = rx.match(text, pos)
            if m and m.end() > pos:
                piece = m.group()
                if kind == "number":
                    piece = _to_digits(piece)
                parts.append((kind, piece))
                pos = m.end()
                break
        else:
            break
    return pos, parts


def _address(dv: _Digits, gaz: Gazetteer) -> Address | None:
    # place matches are found on the view; on the digits text the offsets shift only after numerals
    view_places = gaz.find(dv.view)
    places: dict[int, PlaceMatch] = {}
    inverse = {s: i for i, s in enumerate(dv._starts) if i == 0 or dv._starts[i - 1] != s}
    inverse_end = {e: i + 1 for i, e in enumerate(dv._ends)}
    for pm in view_places:
        if pm.clean_start in inverse and pm.clean_end in inverse_end:
            s, e = inverse[pm.clean_start], inverse_end[pm.clean_end]
            places[s] = PlaceMatch(pm.place, pm.span, s, e)
    anchors = sorted(set(places) | {m.end() for m in _ADDRESS_CUES.finditer(dv.text)})
    best: tuple[int, int, int, list[tuple[str, str]]] | None = None
    for a in anchors:
        end, parts = _parse_address(dv, a, places)
        kinds = {k for k, _ in parts}
        if not parts:
            continue
        if a not in places and len(parts) < 2 and "number" not in kinds:
            continue  # a cue followed by one loose word is not an address
        if kinds <= {"district", "area"} and len(parts) < 2:
            continue  # a lone place name is a location, not an address
        score = len(parts)
        if best is None or score > best[0]:
            best = (score, a, end, parts)
    if best is None:
        return None
    _, start, end, parts = best
    district = next((p for k, p in parts if k == "district"), None)
    area_text = next((p for k, p in parts if k == "area"), None)
    area_place = next((pm.place for pm in places.values() if start <= pm.clean_start < end and pm.place.kind != "区"), None)
    if district is not None:
        district = gaz.places[district].districts[0] if district in gaz.places else district
    text = "".join(p for _, p in parts)
    full = text
    if district is None and area_place is not None and len(area_place.districts) == 1:
        full = area_place.districts[0] + text
    elif district is not None and not text.startswith(district):
        full = district + text[len(next(p for k, p in parts if k == "district")) :]
    return Address(
        text=text,
        full=full,
        district=district or (area_place.districts[0] if area_place and len(area_place.districts) == 1 else None),
        area=area_place.name if area_place else area_text,
        parts=tuple(parts),
        evidence=dv.span(start, end),
    )


def extract_autofill(transcript: str, gazetteer: Gazetteer | None = None) -> AutoFill:
    """Name, callback number and address found in ``transcript``, each with its evidence span."""
    gaz = gazetteer or default_gazetteer()
    view = TextView(transcript)
    dv = _Digits(view)
    fill = AutoFill(name=_name(view), phone=_phone(dv), address=_address(dv, gaz))
    if fill.phone:
        log.debug("callback number %s found", fill.phone.masked)
    return fill
