"""The JSON API and the pages over a real store: list, search, read, correct, dispatch, audit, export, live."""
from __future__ import annotations

import csv
import io
import re
from typing import Any
from zoneinfo import ZoneInfo

from ivr.live import CallbackEntry, QueueEntry


def test_openapi_lists_the_api(console: Any) -> None:
    api, _ = console.api()
    spec = api.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "12345 hotline console API"
    for path in ("/api/tickets", "/api/tickets/{number}", "/api/tickets/{number}/dispatch",
                 "/api/tickets/{number}/words/{index}", "/api/tickets/{number}/audit", "/api/live"):
        assert path in spec["paths"], path
    assert "TicketOut" in spec["components"]["schemas"]


def test_list_filters_and_search(console: Any) -> None:
    api, _ = console.api()
    n = console.numbers
    body = api.get("/api/tickets").json()
    assert body["total"] == 4 and [i["number"] for i in body["items"]] == [n["c04"], n["c03"], n["c02"], n["c01"]]
    assert [i["number"] for i in api.get("/api/tickets", params={"q": "电梯"}).json()["items"]] == [n["c03"]]
    assert [i["number"] for i in api.get("/api/tickets", params={"q": "半夜 施工"}).json()["items"]] == [n["c02"]]
    assert api.get("/api/tickets", params={"q": "暖气"}).json()["total"] == 0
    assert [i["number"] for i in api.get("/api/tickets", params={"district": "东城区"}).json()["items"]] == [n["c02"]]
    assert api.get("/api/tickets", params={"limit": 2}).json()["total"] == 4
    r = api.get("/api/tickets", params={"since": "2026-13-01"})
    assert r.status_code == 400 and r.json()["detail"] == "since: '2026-13-01' is not a date (YYYY-MM-DD)"
    assert api.get("/api/tickets", params={"limit": 0}).status_code == 422


def test_ticket_has_transcript_suggestion_and_audio(console: Any) -> None:
    api, _ = console.api()
    t = api.get(f"/api/tickets/{console.numbers['c02']}").json()
    assert t["text"] == "东城区和平里街道有一家工地半夜还在施工太吵了"
    assert t["transcript"]["words"][2]["conf"] < 0.6
    s = t["suggestion"]
    assert s["categories"][0]["category"] == "施工噪音" and len(s["categories"]) == 3
    assert s["district"] == "东城区" and t["district"] == "东城区"
    audio = api.get(t["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content == (console.recordings / "20260305" / "c02.wav").read_bytes()
    part = api.get(t["audio_url"], headers={"Range": "bytes=44-1043"})  # the player seeks with ranges
    assert part.status_code == 206 and len(part.content) == 1000
    assert api.get("/api/tickets/19990101001").status_code == 404


def test_corrections_dispatch_and_audit_through_the_api(console: Any) -> None:
    api, csrf = console.api("operator")
    h = {"X-CSRF-Token": csrf}
    n = console.numbers["c03"]
    suggested = api.get(f"/api/tickets/{n}").json()["category"]
    r = api.post(f"/api/tickets/{n}/words/1", json={"text": "楼道"}, headers=h)
    assert r.status_code == 200 and r.json()["text"].startswith("我们楼道")
    r = api.post(f"/api/tickets/{n}/words/99", json={"text": "x"}, headers=h)
    assert r.status_code == 422 and r.json()["detail"] == f"ticket {n} has no word 99"
    r = api.patch(f"/api/tickets/{n}", json={"category": "市政设施", "district": "海淀区"}, headers=h)
    assert r.status_code == 200 and r.json()["category"] == "市政设施"
    r = api.post(f"/api/tickets/{n}/dispatch", json={"department": "区市政市容委"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "dispatched" and r.json()["dispatched_by"] == "operator"
    r = api.post(f"/api/tickets/{n}/dispatch", json={}, headers=h)
    assert r.status_code == 422 and r.json()["detail"] == f"ticket {n} is dispatched, not open"
    trail = api.get(f"/api/tickets/{n}/audit").json()
    assert [(e["user"], e["action"], e["field"]) for e in trail] == [
        ("operator", "word", "word 1"), ("operator", "edit", "category"), ("operator", "edit", "district"),
        ("operator", "edit", "department"), ("operator", "dispatch", "status")]
    assert trail[1]["before"] == suggested and trail[1]["after"] == "市政设施"
    sup, _ = console.api("supervisor")
    [corr] = sup.get("/api/corrections").json()
    assert (corr["ticket_number"], corr["suggested"], corr["category"]) == (n, suggested, "市政设施")
    assert corr["text"].startswith("我们楼道")


def test_csv_export_is_utf8_and_formula_safe(console: Any) -> None:
    n = console.numbers["c01"]
    console.store.update(n, "operator", {"category": "=HYPERLINK(\"http://x\")"})
    sup, _ = console.api("supervisor")
    r = sup.get("/export.csv", params={"q": "垃圾"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["number", "created_at", "status"] and len(rows) == 2
    assert rows[1][0] == n and rows[1][4] == "'=HYPERLINK(\"http://x\")"
    assert rows[1][-1] == "我要反映一下我们小区门口的垃圾好几天没人清理了"
    assert len(list(csv.reader(io.StringIO(sup.get("/api/export.csv").content.decode("utf-8-sig"))))) == 5


def test_live_state_feeds_the_live_page_and_api(console: Any) -> None:
    live = console.ctx.live
    live.call_started("call-a", "13812345678", state="main_menu", elderly=True)
    live.call_started("call-b", "13900001111", state="recording")
    live.call_updated("call-b", state="queued", urgent=True)
    live.call_ended("call-a")
    live.call_updated("gone", state="x")  # an unknown call is ignored
    live.set_queue([QueueEntry("call-b", "13900001111", position=1, waited_s=42.0, expected_wait_s=90.0)])
    from datetime import datetime, timezone

    live.callbacks_source = lambda: [CallbackEntry("cb1", "13700002222", datetime.now(timezone.utc), position=3)]
    api, _ = console.api()
    snap = api.get("/api/live").json()
    assert [c["call_id"] for c in snap["calls"]] == ["call-b"]
    assert snap["calls"][0]["state"] == "queued" and snap["calls"][0]["urgent"] is True
    assert snap["calls"][0]["caller"] == "139****1111"
    assert snap["queue"][0]["waited_s"] == 42.0 and snap["callbacks"][0]["position"] == 3
    page = console.client().get("/live").text
    assert "139****1111" in page and "13900001111" not in page and "cb1" in page

    def broken() -> list[QueueEntry]:
        raise RuntimeError("queue engine unreachable")

    live.queue_source = broken
    snap = api.get("/api/live").json()
    assert snap["errors"] == ["queue: queue engine unreachable"] and len(snap["calls"]) == 1


def test_ticket_page_marks_low_confidence_words_and_shows_suggestion(console: Any) -> None:
    c = console.client()
    n = console.numbers["c02"]
    page = c.get(f"/tickets/{n}").text
    assert f'<audio id="audio" controls preload="auto" src="/tickets/{n}/audio">' in page
    words = re.findall(r'<button type="button" class="word( low)?" data-i="(\d+)" data-start="([\d.]+)"', page)
    assert len(words) == 11 and [int(i) for low, i, _ in words if low] == [2, 5]
    assert "施工噪音" in page and "SHA-256 ✓" in page
    created = console.store.get(n).created_at.astimezone(ZoneInfo("Asia/Shanghai"))  # the hotline's clock
    assert f"<dd>{created:%Y-%m-%d %H:%M:%S} CST</dd>" in page
    assert "“东城区”" in page  # the district's evidence
    (console.recordings / "20260305" / "c02.wav").write_bytes(b"RIFF")
    assert "checksum mismatch" in c.get(f"/tickets/{n}").text


def test_edit_dispatch_and_word_correction_through_the_pages(console: Any) -> None:
    c = console.client("operator")
    n = console.numbers["c01"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get(f"/tickets/{n}").text).group(1)  # type: ignore[union-attr]
    r = c.post(f"/tickets/{n}/words", data={"csrf": csrf, "index": "7", "text": "垃圾桶"})
    assert r.status_code == 200 and "word corrected" in r.text
    r = c.post(f"/tickets/{n}/words", data={"csrf": csrf, "index": "", "text": "x"})
    assert "choose the word to correct" in r.text
    r = c.post(f"/tickets/{n}", data={"csrf": csrf, "action": "save", "category": "环境卫生", "urgency": "urgent"})
    assert "saved" in r.text
    r = c.post(f"/tickets/{n}", data={"csrf": csrf, "action": "dispatch", "department": ""})
    assert "a ticket needs a category and a department to be dispatched" in r.text
    r = c.post(f"/tickets/{n}", data={"csrf": csrf, "action": "dispatch", "department": "街道办事处"})
    assert "dispatched" in r.text and console.store.get(n).status == "dispatched"
    trail = console.store.audit(n)
    assert ("word", "word 7") == (trail[0].action, trail[0].field) and trail[-1].action == "dispatch"
    assert "垃圾桶" in r.text and "街道办事处" in r.text  # the audit table on the page
    page = c.get("/tickets", params={"status": "dispatched"}).text
    assert n in page and console.numbers["c02"] not in page


def test_out_of_range_query_values_get_an_answer_never_a_500(console: Any, served: str) -> None:
    """Over real HTTP: the last day there is, offsets and pages beyond any list, a date before any ticket."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{served}/api/session", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"username": "supervisor", "password": console.password}).encode())
    with urllib.request.urlopen(request) as r:
        cookie = r.headers["Set-Cookie"].split(";")[0]

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{served}{path}", headers={"Cookie": cookie})) as r:
                return r.status, r.read().decode("utf-8-sig")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    status, body = get("/api/tickets?until=9999-12-31")
    assert status == 200 and json.loads(body)["total"] == 4
    status, body = get("/tickets?until=9999-12-31")
    assert status == 200 and all(n in body for n in console.numbers.values())
    for path in ("/api/export.csv?until=9999-12-31", "/export.csv?until=9999-12-31&since=0001-01-01"):
        status, body = get(path)
        rows = list(csv.reader(io.StringIO(body)))
        assert status == 200 and rows[0][:2] == ["number", "created_at"] and len(rows) == 5, path
    status, body = get("/api/export.csv?until=0001-01-01")
    assert status == 200 and list(csv.reader(io.StringIO(body)))[0][0] == "number"  # no ticket: the header row
    for path in (f"/api/tickets?offset={10 ** 20}", f"/api/tickets?limit={10 ** 20}", "/api/tickets?offset=-1"):
        status, body = get(path)
        assert (status, json.loads(body)) == (422, {"detail": "limit must be 1..500 and offset 0..1000000000"}), path
    status, body = get(f"/tickets?page={10 ** 20}")
    assert status == 400 and f"page: {10 ** 20} is beyond the last page there can be (20000000)" in body
    status, body = get("/api/export.csv?until=9999-99-99")
    assert (status, json.loads(body)) == (400, {"detail": "until: '9999-99-99' is not a date (YYYY-MM-DD)"})


def test_a_hazard_heard_only_close_in_sound_shows_what_it_sounded_like(console: Any, served: str) -> None:
    """Over real HTTP: the ticket of "楼道里有股梅奇味" carries the hazard the caller was asked about, and its page
    marks the words and the term they came close to."""
    import json
    import urllib.request

    from asr.results import Transcript, Word

    t = console.store.create(caller="13812345678", call_id="call-gas", kind="complaint", menu_path=["welcome"],
                             flags=[], recording="20260305/gas.wav")
    console.store.complete_recording(t.number, audio_ms=2000, sha256="", transcript=Transcript(
        "楼道里有股梅奇味", (Word("楼道里有股梅奇味", 0.0, 2.0, 0.9),), engine="vosk", model="test"))
    request = urllib.request.Request(f"{served}/api/session", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"username": "operator", "password": console.password}).encode())
    with urllib.request.urlopen(request) as r:
        cookie = r.headers["Set-Cookie"].split(";")[0]
    with urllib.request.urlopen(urllib.request.Request(f"{served}/api/tickets/{t.number}",
                                                       headers={"Cookie": cookie})) as r:
        ticket = json.loads(r.read())
    assert ticket["urgency"] == "normal" and ticket["suggestion"]["urgency_ask"] == "gas"
    with urllib.request.urlopen(urllib.request.Request(f"{served}/tickets/{t.number}", headers={"Cookie": cookie})) as r:
        page = r.read().decode()
    assert '<span class="evidence unsure">gas · unsure “梅奇味” ≈ 煤气味</span>' in page


def test_the_ticket_page_says_what_the_second_pass_left_out_or_why_it_failed(console: Any) -> None:
    from asr.results import Transcript, Word

    first, second = console.numbers["c01"], console.numbers["c02"]
    job = console.store.claim("worker-1", 600)
    assert job is not None and job.number == first
    guarded = Transcript("我要反映小区门口的垃圾", words=(Word("我要", 0.0, 0.4, 0.9),), engine="whisper",
                         model="whisper-base", extra={"guards": "dropped '谢谢观看': a known hallucination"})
    assert console.store.finish(job, guarded)
    page = console.client().get(f"/tickets/{first}").text
    assert "已删去 Left out: dropped &#39;谢谢观看&#39;: a known hallucination" in page
    assert 'id="live-transcript"' in page and "最终 final" in page
    failing = console.store.claim("worker-1", 600)
    assert failing is not None and failing.number == second and console.store.fail(failing, "recording missing")
    page = console.client().get(f"/tickets/{second}").text
    assert "最终转写失败 Final transcript failed: recording missing" in page and 'id="final-pending"' not in page
