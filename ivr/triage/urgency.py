"""Urgency detection: gas, fire, violence, someone in danger, burst mains and other hazards in a transcript.

``EMERGENCY`` means the flow should put the caller through to a person at once; ``URGENT`` flags the ticket for
priority handling. Each hit keeps its evidence span. Negated mentions ("没有着火", "没闻到煤气味") do not count;
hypothetical ones ("万一着火", "会不会塌") count as ``URGENT`` at most (a risk, not an event).

A recogniser mishears: the emergency terms are also looked for by sound, with the menus' homophone and near-tone
tolerance (`asr.intents.find_sounding`). A window that sounds the same (煤气位 for 煤气味) counts as the term; one
that is only close (a tone or a usual confusion away, 晕到 for 晕倒 ...) is ``unsure``: it raises nothing but names
the hazard to ask the caller about (`UrgencyResult.ask`), never a silent normal ticket.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import IntEnum

from asr.intents import find_sounding
from ivr.triage.gazetteer import Span, TextView

__all__ = ["UrgencyLevel", "UrgencyHit", "UrgencyResult", "detect_urgency", "HAZARD_LABELS"]

log = logging.getLogger(__name__)


class UrgencyLevel(IntEnum):
    NORMAL = 0
    URGENT = 1
    EMERGENCY = 2


HAZARD_LABELS = {
    "gas": "燃气泄漏",
    "fire": "火情",
    "violence": "暴力伤害",
    "danger": "人身危险",
    "self_harm": "轻生",
    "flooding": "跑水积水",
    "electric": "电力险情",
    "collapse": "坍塌",
    "manhole": "井盖缺失",
}

E, U = UrgencyLevel.EMERGENCY, UrgencyLevel.URGENT
_GAS = r"(?:煤气|燃气|天然气|液化气|瓦斯)"
_RULES: list[tuple[str, UrgencyLevel, str]] = [
    ("gas", E, _GAS + r"(?:味|的味道|泄漏|泄露|漏了|漏气|中毒)"),
    ("gas", E, r"(?:闻到|有股|一股)[^，。]{0,4}?" + _GAS),
    ("gas", E, r"漏气|一氧化碳中毒"),
    ("fire", E, r"(?<!打)(?<!点)(?<!不)着火|起火|失火|火灾|烧起来|着起来|火苗|大火|火势|浓烟"),
    ("fire", E, r"(?<!烟囱)(?<!锅炉)(?<!烟筒)冒烟"),
    ("fire", E, r"(?:电线|插座|电表|电箱|电闸|配电箱|线路)[^，。]{0,3}?(?:冒火花|打火|烧了|烧焦)"),
    ("violence", E, r"打人(?!工)|打我(?!电话|手机|的)|打(?:老婆|媳妇|孩子|老人|我妈|我爸)|殴打|被打|打伤|打死|打得|把我打|动手打|挨打|家暴|家庭暴力"),
    ("violence", E, r"拿刀|持刀|砍人|砍伤|捅人|捅伤|杀人|要杀|打架斗殴|打起来了|抢劫|绑架"),
    ("danger", E, r"晕倒|昏倒|昏迷|不省人事|没有呼吸|没呼吸了|(?:人|老人|孩子|他|她)[^，。]{0,6}?没气了|心脏病发|抽搐|口吐白沫"),
    ("danger", E, r"被困|困在|困住|关在电梯|卡在电梯"),
    ("danger", E, r"掉进(?:井|河|水|坑|沟|冰窟窿)|掉到(?:井|河|水|坑|沟)|落水|溺水|触电|被电了|大出血|流了很多血|被压在"),
    ("danger", E, r"(?:孩子|小孩|婴儿|老人)[^，。]{0,3}?(?:锁在车里|锁在屋里|锁在家里)"),
    ("danger", U, r"走失|找不到回家|老人不见了|孩子不见了"),
    ("self_harm", E, r"跳楼|要跳下去|轻生|自杀|不想活|割腕|喝药|喝农药|寻短见"),
    ("flooding", U, r"爆管|水管爆|管子爆|管道爆|管道破了|管子破了|水管破了|爆裂|跑水|水漫|淹了|被淹|水淹|进水了"),
    ("flooding", U, r"积水[^，。]{0,4}?(?:半米|齐腰|过膝|很深|一米)"),
    ("electric", U, r"漏电|电线[^，。]{0,4}?(?:掉|垂|断|落)[^，。]{0,3}?(?:地上|下来|路上)|高压线[^，。]{0,4}?(?:断|掉)"),
    ("collapse", U, r"坍塌|倒塌|塌陷|塌了|要塌|(?:会不会|会)塌|塌下来"),
    ("manhole", U, r"井盖[^，。]{0,3}?(?:丢|没了|没有了|被偷|不见|缺失|碎|裂)"),
]
_COMPILED = [(kind, level, re.compile(rx)) for kind, level, rx in _RULES]

SURE_SOUND = 0.94  # the same sounds (one syllable of three in another tone at most): the term itself
CLOSE_SOUND = 0.85  # a tone or a usual confusion away: ask the caller
CLOSE_SOUND_SHORT = 0.92  # a two-syllable term: one syllable in another tone at most (拿到 is not 拿刀)
_SOUND_TERMS: dict[str, tuple[str, ...]] = {  # emergency terms as a recogniser may mishear them; none is an everyday word
    "gas": ("煤气味", "燃气味", "天然气味", "煤气泄漏", "燃气泄漏", "天然气泄漏", "煤气漏了", "燃气漏了", "漏煤气",
            "漏燃气", "煤气中毒", "一氧化碳"),
    "fire": ("着火了", "起火了", "失火", "火灾", "冒烟了", "烧起来了", "浓烟"),
    "violence": ("殴打", "家暴", "家庭暴力", "持刀", "砍人", "杀人", "抢劫", "绑架", "打架斗殴"),
    "danger": ("晕倒", "昏倒", "昏迷", "不省人事", "没有呼吸", "被困", "困在电梯", "关在电梯", "溺水", "落水", "触电",
               "口吐白沫"),
    "self_harm": ("跳楼", "自杀", "轻生", "不想活了", "寻短见", "割腕"),
}

_NEGATORS = ("并没有", "没有", "不是", "并非", "不存在", "没", "未", "无", "别")
_NEG_FILLERS = ("闻到", "看到", "看见", "听到", "发现", "出现", "发生", "真的", "什么", "有", "人", "的", "过")
_AFTER_NEG = re.compile(r"^(?:倒是|倒|是)?(?:没有|没)(?:了|啊|吧|呀)?(?:$|[，。,.!！?？]|但|就是|只是|不过|我|他)")
_HYPOTHETICAL = ("万一", "如果", "要是", "假如", "怕", "担心", "会不会", "容易", "防止", "以免", "预防", "可能", "随时", "隐患")
_RESOLVED = re.compile(r"^[^，。]{0,4}?(?:已经|早就|都)(?:灭了|扑灭|处理好|修好|没事|好了|解决)")


@dataclass(frozen=True)
class UrgencyHit:
    """One hazard mention: its kind (see HAZARD_LABELS), the level it carries, how it was said, and where."""

    kind: str
    level: UrgencyLevel
    status: str  # "present", "negated", "hypothetical", "resolved" or "unsure" (only close in sound)
    evidence: Span
    heard_as: str = ""  # the term the evidence sounds like, when it was found by sound (煤气味 for 煤气位)

    @property
    def label(self) -> str:
        return HAZARD_LABELS[self.kind]


@dataclass(frozen=True)
class UrgencyResult:
    """The highest level of the hits that count, and every hit (including negated ones) for the operator."""

    level: UrgencyLevel
    hits: tuple[UrgencyHit, ...]

    @property
    def transfer_now(self) -> bool:
        """True when the flow should put the caller through to a person at once."""
        return self.level == UrgencyLevel.EMERGENCY

    @property
    def reasons(self) -> tuple[str, ...]:
        """Labels of the hazards that raised the level, in order of appearance, without repeats."""
        out: list[str] = []
        for h in self.hits:
            if h.status not in ("negated", "unsure") and h.label not in out:
                out.append(h.label)
        return tuple(out)

    @property
    def ask(self) -> str:
        """The hazard kind to ask the caller about ("您是说有煤气泄漏吗？"): the closest unsure one, when nothing
        already puts the caller through; "" otherwise."""
        if self.transfer_now:
            return ""
        unsure = [h for h in self.hits if h.status == "unsure"]
        return unsure[0].kind if unsure else ""


def _negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 8) : start]
    for neg in _NEGATORS:
        pos = before.rfind(neg)
        if pos < 0:
            continue
        between = before[pos + len(neg) :]
        changed = True
        while between and changed:
            changed = False
            for f in _NEG_FILLERS:
                if between.startswith(f):
                    between = between[len(f) :]
                    changed = True
        if not between:
            return True
    return bool(_AFTER_NEG.match(text[end : end + 8]))


def _hypothetical(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 8) : end]
    return any(cue in before for cue in _HYPOTHETICAL)


def _status(text: str, s: int, e: int, level: UrgencyLevel) -> tuple[str, UrgencyLevel]:
    if _negated(text, s, e):
        return "negated", UrgencyLevel.NORMAL
    if _RESOLVED.match(text[e:]):
        return "resolved", min(level, UrgencyLevel.URGENT)
    if _hypothetical(text, s, e):
        return "hypothetical", min(level, UrgencyLevel.URGENT)
    return "present", level


def _sound_hits(view: TextView, taken: list[tuple[int, int]]) -> list[UrgencyHit]:
    """Emergency terms found by sound where no rule matched: the same sounds count, close ones are unsure."""
    text = view.text
    found: list[tuple[float, int, int, str, str]] = []
    for kind, terms in _SOUND_TERMS.items():
        for term in terms:
            for h in find_sounding(text, term, CLOSE_SOUND_SHORT if len(term) == 2 else CLOSE_SOUND):
                found.append((h.similarity, h.start, h.end, kind, term))
    hits = []
    for sim, s, e, kind, term in sorted(found, key=lambda f: (-f[0], f[1])):
        if any(s < te and ts < e for ts, te in taken):
            continue
        taken.append((s, e))
        status, level = _status(text, s, e, UrgencyLevel.EMERGENCY)
        if sim < SURE_SOUND and status != "negated":
            status, level = "unsure", UrgencyLevel.NORMAL
        hits.append(UrgencyHit(kind, level, status, view.span(s, e), heard_as=term))
    return hits


def detect_urgency(transcript: str) -> UrgencyResult:
    """Find hazard mentions in ``transcript`` and the urgency level they add up to."""
    view = TextView(transcript)
    text = view.text
    taken: list[tuple[int, int]] = []
    hits: list[UrgencyHit] = []
    for kind, level, rx in _COMPILED:
        for m in rx.finditer(text):
            s, e = m.span()
            if any(s < te and ts < e for ts, te in taken):
                continue  # already explained by an earlier (more specific) rule
            taken.append((s, e))
            status, got = _status(text, s, e, level)
            hits.append(UrgencyHit(kind, UrgencyLevel(got), status, view.span(s, e)))
    hits += _sound_hits(view, taken)
    hits.sort(key=lambda h: h.evidence.start)
    level = max((h.level for h in hits), default=UrgencyLevel.NORMAL)
    if level == UrgencyLevel.EMERGENCY:
        log.info("emergency in transcript: %s", ", ".join(h.label for h in hits if h.level == level))
    return UrgencyResult(UrgencyLevel(level), tuple(hits))
