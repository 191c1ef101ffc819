"""The front door of a real `ivr serve` under SIPp: a trusted trunk's 1,000 calls at 50/s are all answered with the
shipped limits; a flood from an untrusted address is still limited, its refusals are logged as a summary, not a
line each, and /metrics counts every one."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sippkit import PCMU_ONLY, SIPP, answered_or_refused, caller_bye, invite_answered, run_sipp, scenario

pytestmark = [pytest.mark.sipp, pytest.mark.slow,
              pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

TRUNK, STRANGER = "127.0.0.1", "127.0.0.2"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    sip_port: int
    web_port: int
    log: Path

    def metrics(self) -> dict[str, float]:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=10).read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", text, re.M)}


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, prompt_cache: Path) -> Iterator[Server]:
    """`ivr serve --trust 127.0.0.1` with the shipped limits, its log in a file."""
    tmp = tmp_path_factory.mktemp("front_door")
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    env = {**os.environ, "IVR_DATA_DIR": str(tmp / "data"), "IVR_PROMPTS_CACHE": str(prompt_cache),
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web),
           "IVR_RTP_PORT_MIN": "41000", "IVR_RTP_PORT_MAX": "42999"}
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "serve", "--trust", TRUNK, "--drain", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    served = Server(proc, sip, web, log)
    try:
        for _ in range(300):  # until the console is up
            assert proc.poll() is None, log.read_text()
            try:
                served.metrics()
                break
            except OSError:
                time.sleep(0.2)
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def refused(metrics: dict[str, float], reason: str) -> float:
    return metrics.get(f'ivr_sip_invites_refused_total{{reason="{reason}"}}', 0.0)


def test_trusted_trunk_gets_every_call_answered_above_the_per_source_limit(server: Server, tmp_path: Path) -> None:
    before = server.metrics()
    uac = scenario("uac", invite_answered(PCMU_ONLY), caller_bye(2))  # SIPp's -sn uac, answered then hung up
    rc, out = asyncio.run(run_sipp(uac, tmp_path, server.sip_port, calls=1000, rate=50, timeout_s=600, nice=5,
                                   local_ip=TRUNK))
    assert rc == 0, out  # every one of the 1,000 calls was answered: no 503
    after = server.metrics()
    assert all(refused(after, r) == refused(before, r) for r in ("source_rate", "global_rate", "source_calls"))


FLOOD = answered_or_refused()


def test_untrusted_flood_is_limited_logged_as_a_summary_and_counted(server: Server, tmp_path: Path) -> None:
    before = server.metrics()
    calls = 600
    rc, out = asyncio.run(run_sipp(FLOOD, tmp_path, server.sip_port, calls=calls, rate=300, timeout_s=600,
                                   local_ip=STRANGER, extra=["-trace_logs", "-log_file", str(tmp_path / "got.log")]))
    assert rc == 0, out
    got_503 = (tmp_path / "got.log").read_text().count("refused ")
    assert 400 < got_503 < calls  # 20/s after a burst of 40 from one untrusted address
    after = server.metrics()
    assert refused(after, "source_rate") - refused(before, "source_rate") == got_503
    held = 'ivr_log_lines_suppressed_total{logger="ivr.sip.uas"}'
    assert after.get(held, 0) - before.get(held, 0) >= got_503 - 2
    lines: list[str] = []
    for _ in range(600):  # until the rate-limited log reports what it held back (every 10 s)
        lines = [line for line in server.log.read_text().splitlines()
                 if f"from {STRANGER} refused 503: INVITE rate limit" in line]
        if any("more like this" in line for line in lines):
            break
        time.sleep(0.1)
    assert 2 <= len(lines) <= 3, lines  # not one line per refused INVITE
    counted = [int(m.group(1)) if (m := re.search(r"\((\d+) more like this\)$", line)) else 0 for line in lines]
    assert len(lines) + sum(counted) == got_503
