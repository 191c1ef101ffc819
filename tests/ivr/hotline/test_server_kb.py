"""The knowledge base in `serve_hotline`: a SIPp caller presses 2 (consult) and 1 (the first of the most asked
entries, RFC 4733) and hears its answer, which the console's `/metrics`, read over HTTP, counts; a supervisor's edit
over HTTP has the answer rendered again for the next callers."""
from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import httpx

import pytest
from flow_harness import rendered_kb
from sippkit import PCMU_EVENTS, SIPP, caller_bye, invite_answered, pause, play, run_sipp, scenario

from asr.audio import duration_ms
from ivr.config import Settings
from ivr.flow.kbvoice import kb_cache_dir
from ivr.hotline.server import serve_hotline
from ivr.hotline.sip_endpoint import server_config
from ivr.console.users import UserStore
from ivr.kb import load_kb
from ivr.tickets import TicketStore
from prompts import PromptLibrary, load_catalogue
from prompts.files import FilePrompts

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

SHARE = Path("/usr/share/sip-tester")
REPO = Path(__file__).resolve().parents[3]
TOP = ["ss_card_lost", "ht_season", "hf_purchase_withdraw", "rp_apply"]  # flows/hotline.yaml's consult node


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kb_metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r"^ivr_kb_(\w+)_total (\S+)$", text, re.M)}


def test_a_caller_hears_a_most_asked_answer_and_metrics_count_it(settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=44000,
                                   rtp_port_max=44999, console_port=free_tcp_port())
    assert settings.prompts_cache is not None
    rendered_kb(load_kb(settings.kb_dir), TOP, kb_cache_dir(settings.prompts_cache))  # beside the catalogue's
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), settings.prompts_cache)
    welcome_ms = duration_ms(prompts.get("welcome"))
    xml = scenario(
        "kb", invite_answered(PCMU_EVENTS), pause(welcome_ms + 1000), play(SHARE / "dtmf_2833_2.pcap", 600),
        pause(1500), play(SHARE / "dtmf_2833_1.pcap", 600), pause(4000), caller_bye(2),
    )

    async def main() -> dict[str, float]:
        stop = asyncio.Event()
        servers = []
        task = asyncio.create_task(serve_hotline(settings, server_config(settings), console=True, stop=stop,
                                                 drain_seconds=5, ready=servers.append))
        while not servers:
            await asyncio.sleep(0.05)
        rc, out = await run_sipp(xml, tmp_path, servers[0].port)
        assert rc == 0, out
        seen = await asyncio.to_thread(kb_metrics, settings.console_port)
        stop.set()
        await task
        return seen

    seen = asyncio.run(main())
    assert seen == dict(asked=1.0, answered=1.0, confirmed=0.0, declined=0.0, to_person=0.0, tickets=0.0)


NEW_ANSWER = "社保卡丢了，请先打电话挂失，再带上本人身份证到社保卡服务网点补办，也可以在手机上申请补卡，新卡会寄到家里。"


def edit_and_wait(base_url: str, password: str) -> str:
    """Sign in as the supervisor, change ss_card_lost's spoken answer, and read its page until the re-render is
    done or failed (the console shows it)."""
    with httpx.Client(base_url=base_url) as c:
        csrf = c.post("/api/session", json={"username": "sup", "password": password}).json()["csrf"]
        base = c.get("/api/kb/entries/ss_card_lost/version").json()["base"]
        r = c.patch("/api/kb/entries/ss_card_lost", headers={"X-CSRF-Token": csrf},
                    json={"spoken": NEW_ANSWER, "base": base})
        assert r.status_code == 200, r.text
        page = ""
        for _ in range(1200):
            page = c.get("/kb/ss_card_lost").text
            if "audio: done" in page or "audio: failed" in page:
                break
            time.sleep(0.1)
        return page


def test_a_supervisors_edit_is_rendered_again_for_the_next_callers(settings: Settings, tmp_path: Path) -> None:
    kb_dir, cache = tmp_path / "kb", tmp_path / "prompts"
    shutil.copytree(REPO / "kb", kb_dir, ignore=shutil.ignore_patterns(".history", "eval"))
    settings = dataclasses.replace(settings, kb_dir=kb_dir, prompts_cache=cache, prompts_voice="espeak",
                                   sip_host="127.0.0.1", sip_port=0, rtp_port_min=44000, rtp_port_max=44999,
                                   console_port=free_tcp_port())
    rendered_kb(load_kb(kb_dir), ["ss_card_lost"], kb_cache_dir(cache))  # as `ivr prompts build` left them
    played = FilePrompts(kb_cache_dir(cache))
    answer, question = played.audio("kb_ss_card_lost"), played.audio("kbq_ss_card_lost")
    assert answer is not None and question is not None
    UserStore(TicketStore(settings.database_url).engine).add("sup", "a long test password", "supervisor")

    async def main() -> str:
        stop = asyncio.Event()
        servers = []
        task = asyncio.create_task(serve_hotline(settings, server_config(settings), console=True, stop=stop,
                                                 drain_seconds=1, ready=servers.append))
        while not servers:
            await asyncio.sleep(0.05)
        page = await asyncio.to_thread(edit_and_wait, f"http://127.0.0.1:{settings.console_port}",
                                       "a long test password")
        stop.set()
        await task
        return page

    page = asyncio.run(main())
    assert "audio: done" in page, page
    new = played.audio("kb_ss_card_lost")
    assert new is not None and new != answer  # the next caller hears the new answer
    assert played.audio("kbq_ss_card_lost") == question  # the title did not change: not rendered again
    assert load_kb(kb_dir).get("ss_card_lost").spoken == NEW_ANSWER  # type: ignore[union-attr]
