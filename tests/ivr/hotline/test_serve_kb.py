"""`ivr serve` (and `ivr console` alone) as a real process: a supervisor edits a knowledge-base entry through the console over HTTP, the file
on disk is written anew (the previous kept), the running hotline answers from the new version and renders its
spoken answer in the background."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote
from pathlib import Path
from typing import Any

import pytest
from ivr.console.users import UserStore
from ivr.flow.kbvoice import kb_cache_dir
from ivr.tickets.store import TicketStore
from prompts.files import FilePrompts

IVR = Path(sys.executable).parent / "ivr"
REPO = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse 12345"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browserless:
    """An HTTP client with cookies, signed in to the console's API."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        try:
            with self.opener.open(request, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def sign_in(self, user: str) -> None:
        status, body = self.call("POST", "/api/session", {"username": user, "password": PASSWORD})
        assert status == 200, body
        self.csrf = body["csrf"]


def render_state(client: Browserless, entry_id: str) -> str:
    """The entry page's re-render state once it is done or failed (read again while it is rendering)."""
    page = ""
    for _ in range(1200):  # a bound against a hang, not a speed
        request = urllib.request.Request(f"{client.base}/kb/{entry_id}")
        with client.opener.open(request, timeout=30) as r:
            page = r.read().decode()
        found = re.search(r'id="kb-render">录音 audio: ([^<]+)<', page)
        if found and found.group(1) != "rendering":
            return found.group(1)
        time.sleep(0.1)
    return page


@pytest.mark.parametrize("command", [["serve", "--drain", "0"], ["console"]])
def test_a_supervisors_edit_reaches_the_running_hotline(tmp_path: Path, command: list[str]) -> None:
    kb_dir = tmp_path / "kb"  # the shipped knowledge base (the shipped flow names its entries), to edit
    shutil.copytree(REPO / "kb", kb_dir, ignore=shutil.ignore_patterns(".history", "eval"))
    data = tmp_path / "data"
    data.mkdir()
    users = UserStore(TicketStore(f"sqlite:///{data / 'ivr.db'}").engine)
    users.add("sup", PASSWORD, "supervisor")
    users.add("op", PASSWORD, "operator")
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    cache = tmp_path / "prompts"  # the process renders the edited answer into it
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_PROMPTS_CACHE": str(cache), "IVR_PROMPTS_VOICE": "espeak",
           "IVR_KB_DIR": str(kb_dir), "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip),
           "IVR_CONSOLE_PORT": str(web)}
    proc = subprocess.Popen([str(IVR), *command], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):  # until the console is up (the first start loads the dispatch classifier)
            if proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web}/login", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{web}"
        operator, supervisor = Browserless(base), Browserless(base)
        operator.sign_in("op")
        supervisor.sign_in("sup")
        status, hits = operator.call("GET", "/api/kb/search?q=" + quote("暖气费怎么交"))
        assert status == 200 and hits and 0 < hits[0]["score"] <= 1
        before = (kb_dir / "heating.yaml").read_bytes()
        spoken = "供暖费按建筑面积收取，请在十一月十五日以前向供热单位缴纳。"
        assert operator.call("PATCH", "/api/kb/entries/ht_fee", {"status": "checked"})[0] == 403
        status, body = supervisor.call("PATCH", "/api/kb/entries/ht_fee",
                                       {"spoken": spoken, "status": "checked", "expires": "2099-12-31"})
        assert status == 200 and body["speakable"] is True, body
        [kept] = (kb_dir / ".history" / "heating").iterdir()
        assert kept.read_bytes() == before and spoken in (kb_dir / "heating.yaml").read_text(encoding="utf-8")
        status, entry = operator.call("GET", "/api/kb/entries/ht_fee")
        assert (entry["spoken"], entry["checked_by"], entry["speakable"]) == (spoken, "sup", True)
        assert render_state(supervisor, "ht_fee") == "done"
        assert FilePrompts(kb_cache_dir(cache)).audio("kb_ht_fee") is not None  # the next callers' answer
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
