"""SIPp callers of the hotline: keys by RFC 4733, the menu paths to the desks, a caller leaving a spoken
suggestion, a flow with operators on duty whatever the hour."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from sippkit import PCMU_EVENTS, answer_ok, caller_bye, invite_answered, pause, pcmu_pcap, play, recv, scenario

from asr.audio import duration_ms
from ivr.config import Settings
from prompts import PromptLibrary, load_catalogue

REPO = Path(__file__).resolve().parents[3]
SHARE = Path("/usr/share/sip-tester")


def key(digit: str, then_ms: int = 1000) -> str:
    return play(SHARE / f"dtmf_2833_{digit}.pcap", then_ms)


def caller(number: str, *steps: str) -> str:
    """A SIPp caller from `number`: answered, presses keys, stays on until the hotline hangs up (after the operator
    did, or after booking a callback)."""
    xml = scenario(f"caller {number}", invite_answered(PCMU_EVENTS), *steps, recv("BYE"), answer_ok())
    return xml.replace("13800138000", number)


def all_day_flow(tmp_path: Path) -> Path:
    """The shipped flow with operators on duty whatever the hour the test runs."""
    flow = tmp_path / "hotline.yaml"
    flow.write_text(re.sub(r"business_hours: \{.*\}", 'business_hours: {days: [1, 2, 3, 4, 5, 6, 7], open: "00:00", '
                           'close: "23:59"}', (REPO / "flows" / "hotline.yaml").read_text(encoding="utf-8")),
                    encoding="utf-8")
    return flow


def served(settings: Settings, tmp_path: Path) -> Settings:
    """Settings for a server on loopback whose flow has operators on duty whatever the hour the test runs."""
    return dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=44000, rtp_port_max=44999,
                               flow=all_day_flow(tmp_path))


ELDERLY = (pause(1500), key("0"))  # 老年人请按0 at the main menu: the elderly desk, with priority
GENERAL = (pause(1500), key("2", 1500), key("0"))  # consultation menu, then 0 for a person: the general desk


def suggestion_caller(settings: Settings, speech: bytes, pcap: Path) -> str:
    """Presses 4 (a suggestion) during the welcome, speaks after the beep, hangs up."""
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), settings.prompts_cache)
    intro_ms = duration_ms(prompts.get("suggestion_intro"))
    return scenario("suggestion", invite_answered(PCMU_EVENTS), pause(1500), play(SHARE / "dtmf_2833_4.pcap", 600),
                    pause(intro_ms + 1500), play(pcmu_pcap(pcap, speech), duration_ms(speech) + 300), caller_bye(2))
