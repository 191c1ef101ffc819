"""Ctrl-C on a real `ivr serve` whose bridged callback's far ends have vanished: the drain has a hard limit, after
which the legs still up are hung up, the log says how many, and the process exits cleanly."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sippkit import SIPP

from ivr.queue.callbacks import CallbackStore, callbacks_url

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

HERE = Path(__file__).resolve().parent / "sipp"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(log: Path, pattern: str, proc: subprocess.Popen[bytes]) -> bool:
    """Whether the server's log shows `pattern` (a regex) within about 60 s, while the server runs."""
    for _ in range(600):
        if re.search(pattern, log.read_text(errors="replace"), re.M):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def bridged_callback(sipp, tmp_path: Path, prompt_cache: Path, rtp_timeout_s: int
                     ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`ivr serve --drain 2` dialling a callback booked earlier: the citizen and the operator (SIPp phones that echo
    RTP) are bridged, then both phones vanish (killed: no BYE, no RTP). Yields the server and its log."""
    citizen, citizen_port = sipp(["-sf", str(HERE / "citizen_presses_1.xml"), "-rtp_echo"], 1)
    operator, operator_port = sipp(["-sf", str(HERE / "answer_hold_bye.xml"), "-d", "600000", "-rtp_echo"], 1)
    data = tmp_path / "data"
    now = time.time()
    CallbackStore(callbacks_url(data)).book("13900000009", "general", 2, entered=now, rank=now)
    config = tmp_path / "ivr.toml"
    config.write_text(f'[queue]\ntrunk = "127.0.0.1:{citizen_port}"\ncallback_hours = "00:00-24:00"\n'
                      f'[[queue.agents]]\nid = "op1"\nuri = "sip:op1@127.0.0.1:{operator_port}"\ngroups = ["general"]\n',
                      encoding="utf-8")
    env = {**os.environ, "IVR_CONFIG": str(config), "IVR_DATA_DIR": str(data), "IVR_PROMPTS_CACHE": str(prompt_cache),
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(free_udp_port()), "IVR_RTP_PORT_MIN": "43000",
           "IVR_RTP_PORT_MAX": "43999", "IVR_RTP_TIMEOUT_S": str(rtp_timeout_s)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "serve", "--no-console", "--drain", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for(log, r"callback 1: citizen put through to op1", proc), log.read_text()
        for far_end in (citizen, operator):
            far_end.kill()
            far_end.wait()
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_with_a_bridged_callback_whose_far_ends_are_gone_cuts_it_and_exits(
        sipp, tmp_path: Path, prompt_cache: Path) -> None:
    with bridged_callback(sipp, tmp_path, prompt_cache, rtp_timeout_s=600) as (proc, log):
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "stopping: 0 call(s) and 2 outbound leg(s) in progress, draining for up to 2 s" in output
    assert re.search(r"hanging up 0 call\(s\) and 2 outbound leg\(s\) still in progress after \d s of draining",
                     output)
    assert "stopped: 0 call(s) and 2 outbound leg(s) cut" in output
    assert "no RTP" not in output and "Traceback" not in output and "ERROR" not in output


def test_a_bridged_callback_whose_far_ends_are_gone_ends_after_the_rtp_timeout(
        sipp, tmp_path: Path, prompt_cache: Path) -> None:
    with bridged_callback(sipp, tmp_path, prompt_cache, rtp_timeout_s=2) as (proc, log):
        assert wait_for(log, r"callback 1: answered", proc), log.read_text()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert len(re.findall(r"outbound call \S+: no RTP from the far end for 2 s: hanging up", output)) == 2, output
    assert "stopping: 0 call(s) and 0 outbound leg(s) in progress" in output
    assert "stopped: 0 call(s) and 0 outbound leg(s) cut" in output and "Traceback" not in output
