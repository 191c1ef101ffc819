"""Security of the console: sessions everywhere, roles, CSRF, recordings confined to their folder,
transcripts shown as text, safe redirects and headers."""
from __future__ import annotations

from typing import Any

import re
import sqlite3
from datetime import datetime, timezone

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update

from asr.results import Transcript, Word
from ivr.console.users import sessions_table


PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/api/session")}


def routes(console: Any) -> list[tuple[str, str]]:
    number = console.numbers["c01"]
    out = []
    from ivr.console import api, pages

    for r in [*api.router.routes, *pages.router.routes]:
        if isinstance(r, APIRoute):
            path = r.path.replace("{number}", number).replace("{index}", "0")
            out += [(m, path) for m in sorted(r.methods) if (m, r.path) not in PUBLIC]
    return out


def test_every_page_and_api_call_needs_a_session(console: Any) -> None:
    c = console.client(None)
    checked = routes(console)
    assert len(checked) >= 25
    for method, path in checked:
        r = c.request(method, path, follow_redirects=False)
        if path.startswith("/api/"):
            assert r.status_code == 401 and r.json() == {"detail": "sign in first"}, (method, path)
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (method, path)
    assert console.store.audit(console.numbers["c01"]) == []


def test_a_forged_or_ended_session_opens_nothing(console: Any) -> None:
    c = console.client(None)
    c.cookies.set("ivr_session", "made-up-token")
    assert c.get("/api/tickets").status_code == 401
    api, csrf = console.api("operator")
    assert api.get("/api/tickets").status_code == 200
    assert api.delete("/api/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert api.get("/api/tickets").status_code == 401


def test_expired_sessions_and_disabled_users_are_out(console: Any) -> None:
    api, _ = console.api("operator")
    with console.store.engine.begin() as conn:
        conn.execute(update(sessions_table).values(expires_at=datetime(2020, 1, 1, tzinfo=timezone.utc)))
    assert api.get("/api/tickets").status_code == 401
    api, _ = console.api("operator")
    console.ctx.users.set_active("operator", False)
    assert api.get("/api/tickets").status_code == 401
    assert console.client(None).post("/api/session", json={"username": "operator", "password": console.password}) \
        .status_code == 401


def test_passwords_and_session_tokens_are_stored_hashed(console: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = console.client("operator")
    token = c.cookies.get("ivr_session")
    db = console.store.url[len("sqlite:///"):]
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert token and token not in dump and console.password not in dump
    assert re.search(r"scrypt\$16384\$8\$1\$", dump)


def test_wrong_password_is_refused(console: Any) -> None:
    c = console.client(None)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": "operator", "password": "nope-nope", "csrf": token, "next": "/"},
               follow_redirects=False)
    assert r.status_code == 303 and "error=1" in r.headers["location"]
    assert "ivr_session" not in c.cookies
    r = c.post("/api/session", json={"username": "nobody", "password": "whatever1"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong user name or password"


@pytest.mark.parametrize("role, allowed", [("operator", False), ("supervisor", True), ("admin", True)])
def test_supervisor_routes(console: Any, role: str, allowed: bool) -> None:
    api, csrf = console.api(role)
    n = console.numbers["c01"]
    calls = [
        api.get("/api/corrections"),
        api.get("/api/export.csv"),
        api.get("/export.csv"),
        api.post(f"/api/tickets/{n}/status", json={"status": "closed"}, headers={"X-CSRF-Token": csrf}),
    ]
    for r in calls:
        assert r.status_code == (200 if allowed else 403), r.text
        if not allowed:
            assert r.json()["detail"] == "this needs the supervisor role"


@pytest.mark.parametrize("role, allowed", [("operator", False), ("supervisor", False), ("admin", True)])
def test_admin_routes(console: Any, role: str, allowed: bool) -> None:
    api, csrf = console.api(role)
    assert api.get("/api/users").status_code == (200 if allowed else 403)
    r = api.post("/api/users", json={"username": "new.op", "password": "long enough", "role": "operator"},
                 headers={"X-CSRF-Token": csrf})
    assert r.status_code == (201 if allowed else 403)


def test_operator_page_hides_supervisor_controls(console: Any) -> None:
    n = console.numbers["c01"]
    assert 'id="close"' not in console.client("operator").get(f"/tickets/{n}").text
    assert 'id="close"' in console.client("supervisor").get(f"/tickets/{n}").text
    r = console.client("operator").post(f"/tickets/{n}/status", data={"status": "closed"})
    assert r.status_code == 403


def test_forms_need_the_session_csrf_token(console: Any) -> None:
    c = console.client("operator")
    n = console.numbers["c01"]
    page = c.get(f"/tickets/{n}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    for data in ({"note": "x"}, {"note": "x", "csrf": "wrong"}, {"note": "x", "csrf": ""}):
        r = c.post(f"/tickets/{n}", data=data)
        assert r.status_code == 403 and "CSRF token missing or wrong" in r.text
    assert console.store.get(n).note == "" and console.store.audit(n) == []
    # another user's token does not work either
    other = re.search(r'name="csrf" value="([^"]+)"',  # type: ignore[union-attr]
                      console.client("supervisor").get(f"/tickets/{n}").text).group(1)
    assert c.post(f"/tickets/{n}", data={"note": "x", "csrf": other}).status_code == 403
    r = c.post(f"/tickets/{n}", data={"note": "x", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and console.store.get(n).note == "x"


def test_api_changes_need_the_csrf_header(console: Any) -> None:
    api, csrf = console.api("operator")
    n = console.numbers["c01"]
    assert api.patch(f"/api/tickets/{n}", json={"note": "x"}).status_code == 403
    assert api.patch(f"/api/tickets/{n}", json={"note": "x"}, headers={"X-CSRF-Token": "no"}).status_code == 403
    assert api.post(f"/api/tickets/{n}/dispatch", json={}).status_code == 403
    assert console.store.audit(n) == []
    assert api.patch(f"/api/tickets/{n}", json={"note": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 200


def test_login_form_needs_its_csrf_cookie(console: Any) -> None:
    c = console.client(None)
    r = c.post("/login", data={"username": "operator", "password": console.password, "csrf": "guess", "next": "/"})
    assert r.status_code == 403 and "ivr_session" not in c.cookies


def test_recordings_cannot_be_read_outside_their_folder(console: Any) -> None:
    secret = console.recordings.parent / "secret.wav"
    secret.write_bytes(b"RIFF-not-for-operators")
    api, _ = console.api("operator")
    for bad in ("../secret.wav", "20260305/../../secret.wav", str(secret), "/etc/passwd", "."):
        t = console.store.create(caller="1", call_id="x", kind="complaint", menu_path=[], flags=[], recording=bad)
        for path in (f"/api/tickets/{t.number}/audio", f"/tickets/{t.number}/audio"):
            r = api.get(path)
            assert r.status_code == 403 and b"RIFF-not" not in r.content, (bad, path)
            assert r.json()["detail"] == "that recording is not in the recordings folder" if "/api/" in path else True
    for path in ("/tickets/..%2F..%2Fsecret.wav/audio", "/api/tickets/..%2Fsecret.wav/audio",
                 "/static/..%2F..%2F..%2Fsecret.wav", "/static/../../secret.wav"):
        r = api.get(path)
        assert r.status_code in (404, 400) and b"RIFF-not" not in r.content, path


def test_a_transcript_containing_html_is_shown_as_text(console: Any) -> None:
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    t = console.store.create(caller="<b>1</b>", call_id="x", kind="complaint", menu_path=["<i>m</i>"], flags=[],
                             recording="20260305/c01.wav")
    console.store.complete_recording(t.number, audio_ms=1000, sha256="", transcript=Transcript(
        text=evil, words=(Word(evil, 0.0, 1.0, 0.3),)))
    console.store.update(t.number, "operator", {"note": "</textarea><script>alert(2)</script>"})
    c = console.client("operator")
    for page in (c.get(f"/tickets/{t.number}").text, c.get("/tickets").text):
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>1</b>" not in page
    page = c.get(f"/tickets/{t.number}").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;/textarea&gt;&lt;script&gt;alert(2)" in page


def test_redirect_after_sign_in_stays_on_the_console(console: Any) -> None:
    c = console.client(None)
    for target, expected in (("//evil.example/x", "/tickets"), ("https://evil.example", "/tickets"),
                             ("/\\evil.example", "/tickets"), ("/live", "/live")):
        page = c.get("/login", params={"next": target}).text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        nxt = re.search(r'name="next" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"username": "operator", "password": console.password, "csrf": token, "next": nxt},
                   follow_redirects=False)
        assert r.headers["location"] == expected, target


def test_security_headers_and_cookie_flags(console: Any) -> None:
    c = console.client(None)
    r = c.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    r = c.post("/api/session", json={"username": "operator", "password": console.password})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_repeated_wrong_passwords_lock_the_name_out(console: Any) -> None:
    c = console.client(None)
    for _ in range(5):
        assert c.post("/api/session", json={"username": "operator", "password": "guess-guess"}).status_code == 401
    r = c.post("/api/session", json={"username": "operator", "password": console.password})
    assert r.status_code == 429 and r.json()["detail"].startswith("too many failed sign-ins")
    assert c.post("/api/session", json={"username": "admin", "password": console.password}).status_code == 200
