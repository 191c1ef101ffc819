"""The knowledge base in a served call: a SIPp caller presses 2 (consult) and 1 (the first of the most asked
entries, RFC 4733) and hears its answer; the console's `/metrics`, read over HTTP, counts the question and the
answer."""
from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import urllib.request
from pathlib import Path

import pytest
from flow_harness import rendered_kb
from sippkit import PCMU_EVENTS, SIPP, caller_bye, invite_answered, pause, play, run_sipp, scenario

from asr.audio import duration_ms
from ivr.config import Settings
from ivr.flow.kbvoice import kb_cache_dir
from ivr.hotline.server import serve_hotline
from ivr.hotline.sip_endpoint import server_config
from ivr.kb import load_kb
from prompts import PromptLibrary, load_catalogue

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

SHARE = Path("/usr/share/sip-tester")
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
