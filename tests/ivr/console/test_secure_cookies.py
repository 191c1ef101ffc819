"""Secure cookies behind HTTPS (issue 12, item 10): `ivr serve --secure-cookies`, the console_secure_cookies setting
and `ivr console --secure-cookies` mark the session and sign-in cookies Secure; without them they are not."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serveproc import free_port, serve

from ivr.config import load_settings
from ivr.console.users import UserStore
from ivr.tickets import TicketStore

PASSWORD = "correct horse 12345"


def cookies_of(base: str) -> list[str]:
    """The Set-Cookie headers of the sign-in page and of an API sign-in."""
    with urllib.request.urlopen(f"{base}/login", timeout=30) as r:
        cookies = r.headers.get_all("Set-Cookie") or []
    request = urllib.request.Request(f"{base}/api/session", method="POST",
                                     data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return cookies + (r.headers.get_all("Set-Cookie") or [])


@contextmanager
def console_process(tmp_path: Path, *args: str) -> Iterator[str]:
    """`ivr console ARGS` on a free port."""
    port = free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "console", "--port", str(port), *args],
                            env={**os.environ, "IVR_DATA_DIR": str(tmp_path / "data")}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # start-up only; nothing is timed
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None, "ivr console exited"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("command, args, env, secure", [
    ("serve", ["--secure-cookies"], {}, True),
    ("serve", [], {"IVR_CONSOLE_SECURE_COOKIES": "yes"}, True),
    ("serve", [], {}, False),
    ("console", ["--secure-cookies"], {}, True),
])
def test_cookies_are_secure_when_asked(tmp_path: Path, prompt_cache: Path, command: str, args: list[str],
                                       env: dict[str, str], secure: bool) -> None:
    settings = load_settings(overrides={"data_dir": tmp_path / "data"}, environ={})
    UserStore(TicketStore(settings.database_url).engine).add("admin", PASSWORD, "admin")
    if command == "serve":
        with serve(tmp_path, prompt_cache, *args, env=env) as served:
            cookies = cookies_of(served.url)
    else:
        with console_process(tmp_path, *args) as base:
            cookies = cookies_of(base)
    assert [c.split("=")[0] for c in cookies] == ["ivr_login_csrf", "ivr_session"]
    assert all(("; secure" in c.lower()) is secure for c in cookies), cookies
    assert all("httponly" in c.lower() and "samesite=strict" in c.lower() for c in cookies)
