"""`ivr serve` as a real process: SIP and the console come up, a SIP OPTIONS probe is answered, SIGHUP reloads the
operators (a bad file is logged and changes nothing), and Ctrl-C (SIGINT) drains and stops both without a
traceback."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def options_probe(port: int, n: int = 1) -> bytes:
    msg = (f"OPTIONS sip:12345@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-probe{n}\r\nMax-Forwards: 70\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: probe-{n}@127.0.0.1\r\n"
           "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            return s.recv(4096)
        except socket.timeout:
            return b""


def operator(agent_id: str, group: str = "general") -> str:
    return f'[[queue.agents]]\nid = "{agent_id}"\nuri = "sip:{agent_id}@127.0.0.1:5999"\ngroups = ["{group}"]\n'


def agents_seen(status: Path, want: set[str]) -> bool:
    """Whether the server's published queue status lists exactly the operators `want` (within 10 s)."""
    for _ in range(100):
        try:
            if set(json.loads(status.read_text())["agents"]) == want:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def test_serve_answers_reloads_then_stops_cleanly_on_sigint(tmp_path: Path, prompt_cache: Path) -> None:
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    config = tmp_path / "ivr.toml"
    config.write_text(operator("op1"), encoding="utf-8")
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CACHE": str(prompt_cache),
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web),
           "IVR_CONFIG": str(config)}
    ivr = Path(sys.executable).parent / "ivr"
    proc = subprocess.Popen([str(ivr), "serve", "--drain", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        metrics = b""
        for _ in range(300):  # until both are up (the first start loads the dispatch classifier)
            if proc.poll() is not None:
                break
            try:
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        assert b"ivr_queue" in metrics, proc.stdout.read() if proc.poll() is not None else "console not up"
        assert options_probe(sip).startswith(b"SIP/2.0 200")
        status = tmp_path / "data" / "queue-status.json"
        assert agents_seen(status, {"op1"})
        config.write_text(operator("op1") + operator("op2", "elderly"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        assert agents_seen(status, {"op1", "op2"})
        config.write_text(operator("op3", "vip"), encoding="utf-8")  # a bad file: nothing changes
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert agents_seen(status, {"op1", "op2"}) and options_probe(sip, 2).startswith(b"SIP/2.0 200")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "stopping" in out
    assert "operators reloaded: +op2" in out
    assert "configuration not reloaded: queue_agents: agent 'op3': unknown group 'vip'" in out
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=1)
