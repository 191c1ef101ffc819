"""The knowledge base in the console over real HTTP: search beside a ticket (its transcript pre-filled), entries
with source, date checked and flags, a supervisor's edit written to the files (previous kept, audited, reloaded,
re-rendered), operators refused (403), bad or stale edits refused with the reason and nothing written."""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import date, datetime
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

from kbfiles import edit

from ivr.config import load_settings
from ivr.console import create_app
from ivr.console.kbdesk import KbDesk
from ivr.kb import KbRegistry

LONG = "供暖费按建筑面积收取" * 13  # 130 characters: over 30 s


def _hit_ids(page: str) -> list[str]:
    return re.findall(r'class="kb-hit[^"]*" data-id="([a-z0-9_]+)"', page)


def _history(kb: Any) -> list[str]:
    folder = kb.kb_dir / ".history"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_search_api_gives_the_operators_text_source_date_and_flags(kb_console: Any) -> None:
    api, _ = kb_console.console.api("operator")
    hits = api.get("/api/kb/search", params={"q": "我那个设保卡丢了怎么补"}).json()
    first = hits[0]
    assert first["id"] == "ss_card_lost" and 0 < first["score"] <= 1
    assert first["text"].startswith("挂失：电话、网上或网点")
    assert first["source"] == {"title": "社会保障卡服务指南", "url": "https://example.org/ss-card"}
    assert (first["status"], first["checked_on"], first["unverified"], first["expired"], first["speakable"]) == (
        "checked", "2026-12-01", False, False, True)
    fee = api.get("/api/kb/search", params={"q": "取暖费在哪交", "limit": 1}).json()
    assert [(h["id"], h["unverified"], h["speakable"], h["checked_on"]) for h in fee] == [
        ("ht_fee", True, False, None)]
    assert api.get("/api/kb/search", params={"q": "x", "limit": 0}).status_code == 422
    assert api.get("/api/kb/entries/nope").json() == {"detail": "no knowledge base entry nope"}


def test_an_expired_entry_is_shown_flagged_and_not_speakable(kb_console: Any) -> None:
    edit(kb_console.kb_dir / "heating.yaml", "expires: 2027-12-01", "expires: 2026-01-31")  # edited by hand
    api, _ = kb_console.console.api("operator")
    [season] = api.get("/api/kb/search", params={"q": "暖气几号来", "limit": 1}).json()
    assert (season["id"], season["expired"], season["unverified"], season["speakable"], season["expires"]) == (
        "ht_season", True, False, False, "2026-01-31")
    page = kb_console.console.client("operator").get("/kb", params={"q": "暖气几号来"}).text
    assert "已过期 expired 2026-01-31" in page.split('data-id="ht_season"')[1].split("</li>")[0]


def test_ticket_page_searches_the_kb_with_the_transcript_and_with_what_the_operator_types(kb_console: Any) -> None:
    web = kb_console.console.client("operator")
    page = web.get(f"/tickets/{kb_console.number}").text
    assert f'id="kbq" value="{kb_console.question}"' in page
    assert _hit_ids(page)[0] == "ss_card_lost"
    assert "社会保障卡服务指南" in page and '<span class="kb-checked">2026-12-01</span>' in page
    typed = web.get(f"/tickets/{kb_console.number}", params={"kbq": "暖气费多少钱"}).text
    assert _hit_ids(typed)[0] == "ht_fee"
    assert "未核实样例 unverified" in typed.split('data-id="ht_fee"')[1].split("</li>")[0]
    other = web.get(f"/tickets/{kb_console.console.numbers['c02']}").text  # every ticket has the box
    assert 'id="kbq"' in other


def test_supervisor_edit_writes_a_new_version_keeps_the_old_audits_reloads_and_rerenders(kb_console: Any) -> None:
    path = kb_console.kb_dir / "heating.yaml"
    before = path.read_bytes()
    hotline = KbRegistry(kb_console.kb_dir)  # the running hotline's own view of the files
    api, csrf = kb_console.console.api("supervisor")
    base = api.get("/api/kb/entries/ht_fee/version").json()["base"]
    spoken = "供暖费按建筑面积收取，请在十一月十五日以前向供热单位缴纳，可以去营业厅，也可以用手机缴费。"
    r = api.patch("/api/kb/entries/ht_fee", headers={"X-CSRF-Token": csrf},
                  json={"spoken": spoken, "status": "checked", "expires": "2027-06-30", "base": base})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["spoken"], body["status"], body["checked_on"], body["checked_by"], body["expires"]) == (
        spoken, "checked", date.today().isoformat(), "supervisor", "2027-06-30")
    assert body["speakable"] is True

    after = path.read_text(encoding="utf-8")
    assert f"      {spoken}\n" in after and "# A test fixture" in after  # the file's comments stay
    [kept] = [p for p in _history(kb_console) if p.startswith("heating/")]
    assert (kb_console.kb_dir / ".history" / kept).read_bytes() == before
    [line] = (kb_console.kb_dir / ".history" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    audit = json.loads(line)
    assert (audit["user"], audit["file"], audit["entry"], audit["fields"], audit["previous"]) == (
        "supervisor", "heating.yaml", "ht_fee", ["spoken", "status", "expires"], f".history/{kept}")
    assert hotline.current().get("ht_fee").spoken == spoken and hotline.reloads == 1  # type: ignore[union-attr]
    assert kb_console.renders.done == [("ht_fee", spoken)]
    page = kb_console.console.client("operator").get("/kb/ht_fee").text
    assert 'id="kb-render">录音 audio: done' in page and "supervisor" in page.split('id="kb-history"')[1]


def test_operators_cannot_edit(kb_console: Any) -> None:
    path = kb_console.kb_dir / "heating.yaml"
    before = path.read_bytes()
    api, csrf = kb_console.console.api("operator")
    r = api.patch("/api/kb/entries/ht_fee", headers={"X-CSRF-Token": csrf}, json={"status": "checked"})
    assert r.status_code == 403 and r.json() == {"detail": "this needs the supervisor role"}
    web = kb_console.console.client("operator")
    page = web.get("/kb/ht_fee").text
    assert 'id="kb-form"' not in page  # no edit form for operators
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = web.post("/kb/ht_fee", data={"csrf": token, "spoken": "x", "text": "y", "questions": "z",
                                     "status": "checked", "expires": ""})
    assert r.status_code == 403
    assert path.read_bytes() == before and _history(kb_console) == [] and kb_console.renders.done == []


def test_bad_edits_are_refused_with_the_reason_and_nothing_written(kb_console: Any) -> None:
    files = {p: p.read_bytes() for p in kb_console.kb_dir.glob("*.yaml")}
    api, csrf = kb_console.console.api("supervisor")
    h = {"X-CSRF-Token": csrf}
    r = api.patch("/api/kb/entries/ht_fee", headers=h, json={"spoken": LONG})
    assert r.status_code == 422 and r.json() == {"detail": "kb/heating.yaml: ht_fee: spoken answer is 33 s, over 30 s"}
    r = api.patch("/api/kb/entries/ht_fee", headers=h, json={"questions": ["社保卡丢了怎么办", "取暖费怎么交"]})
    assert r.status_code == 422
    assert r.json()["detail"] == ("kb/social_insurance.yaml: ss_card_lost: question '社保卡丢了怎么办' is also a "
                                  "question of ht_fee")
    r = api.patch("/api/kb/entries/ht_fee", headers=h, json={"status": "approved"})
    assert r.status_code == 422 and r.json()["detail"] == "kb/heating.yaml: ht_fee: status 'approved' is not checked or unverified"
    r = api.patch("/api/kb/entries/ht_fee", headers=h, json={"spoken": "供暖费按面积收。", "base": "0" * 64})
    assert r.status_code == 409
    assert r.json()["detail"] == "kb/heating.yaml: ht_fee: the file was changed since you opened the entry; open it again"
    assert {p: p.read_bytes() for p in kb_console.kb_dir.glob("*.yaml")} == files
    assert _history(kb_console) == [] and kb_console.renders.done == []


def test_a_bad_edit_in_the_browser_form_keeps_what_was_typed_and_says_why(kb_console: Any) -> None:
    web = kb_console.console.client("supervisor")
    page = web.get("/kb/ht_season").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    base = re.search(r'name="base" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    r = web.post("/kb/ht_season", data={"csrf": token, "base": base, "spoken": LONG, "text": "法定供暖期",
                                        "questions": "什么时候开始供暖\n暖气几号来", "status": "checked",
                                        "expires": "2027-13-01"})
    assert r.status_code == 422
    assert unescape(re.search(r'id="error">([^<]+)<', r.text).group(1)) == (  # type: ignore[union-attr]
        "kb/heating.yaml: ht_season: `expires` '2027-13-01' is not a date (YYYY-MM-DD)")
    assert LONG in r.text.split('id="kb-edit-spoken">')[1]
    assert _history(kb_console) == []


def test_text_only_edit_is_not_rerendered_and_no_change_writes_nothing(kb_console: Any) -> None:
    api, csrf = kb_console.console.api("admin")  # admins may do what supervisors do
    h = {"X-CSRF-Token": csrf}
    r = api.patch("/api/kb/entries/ht_season", headers=h, json={"text": "法定供暖期 11月15日至次年3月15日。"})
    assert r.status_code == 200 and r.json()["checked_by"] == "admin"
    assert kb_console.renders.done == []
    r = api.patch("/api/kb/entries/ht_season", headers=h, json={"text": "法定供暖期 11月15日至次年3月15日。"})
    assert r.status_code == 200
    assert len((kb_console.kb_dir / ".history" / "audit.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_without_a_knowledge_base_the_console_says_why(console: Any, tmp_path: Any) -> None:
    (tmp_path / "empty").mkdir()
    settings = load_settings(overrides={"data_dir": tmp_path / "data", "kb_dir": tmp_path / "empty"}, environ={})
    app = create_app(settings, store=console.store, suggester=console.ctx.suggester)
    c = dataclasses.replace(console, app=app, ctx=app.state.console)
    api, _ = c.api("operator")
    r = api.get("/api/kb/search", params={"q": "社保卡"})
    assert r.status_code == 503
    assert r.json()["detail"] == f"the knowledge base is not loaded: {tmp_path / 'empty'}: no knowledge base files (*.yaml)"
    assert "no knowledge base files" in c.client("operator").get(f"/tickets/{console.numbers['c01']}").text



def test_an_entry_expires_on_the_hotlines_date_not_the_machines(kb_console: Any) -> None:
    east, west = ZoneInfo("Etc/GMT-14"), ZoneInfo("Etc/GMT+12")  # 26 hours apart: never the same date
    last_day = datetime.now(west).date()
    edit(kb_console.kb_dir / "social_insurance.yaml", "expires: 2026-12-31", f"expires: {last_day}")
    views = {name: KbDesk(kb_console.kb_dir, tz=tz) for name, tz in (("east", east), ("west", west))}
    seen = {name: desk.entry("ss_pension_claim", desk.today()) for name, desk in views.items()}
    assert {name: (v.expired, v.speakable) for name, v in seen.items() if v is not None} == {
        "east": (True, False), "west": (False, True)}  # its last day is over in the east, not yet in the west
