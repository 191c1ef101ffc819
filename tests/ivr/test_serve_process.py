"""`ivr serve` as a real process: SIP and the console come up, a SIP OPTIONS probe is answered, and Ctrl-C
(SIGINT) drains and stops both without a traceback."""
from __future__ import annotations

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


def options_probe(port: int) -> bytes:
    msg = (f"OPTIONS sip:12345@127.0.0.1:{port} SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-probe1\r\nMax-Forwards: 70\r\n"
           "From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: probe-1@127.0.0.1\r\n"
           "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            return s.recv(4096)
        except socket.timeout:
            return b""


def test_serve_answers_then_stops_cleanly_on_sigint(tmp_path: Path, prompt_cache: Path) -> None:
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CACHE": str(prompt_cache),
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web)}
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
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "stopping" in out
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=1)
