"""The console in a real headless Chromium (Debian's, driven by Playwright; no browser is downloaded):
sign in, search, open a ticket, play the recording from a word, correct a word and the category, dispatch,
and see the audit entries; an operator sets their own state on the live page; an operator searches the knowledge
base beside a ticket and a supervisor edits an entry."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo
from pathlib import Path
from typing import Any

import pytest

from ivr.config import AgentConfig, Settings, load_settings
from ivr.console import create_app
from ivr.live import LiveState
from ivr.queue import AgentState
from ivr.queue.directory import directory_for

CHROMIUM = os.environ.get("IVR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def desk_settings(tmp_path: Path) -> Settings:
    """The console's settings with two operators: op1 is the console user `operator`, op2 no console user."""
    agents = (AgentConfig("op1", "王芳", "sip:op1@127.0.0.1:5071", ("general",), "operator"),
              AgentConfig("op2", "李强", "sip:op2@127.0.0.1:5072", ("general",)))
    return dataclasses.replace(load_settings(overrides={"data_dir": tmp_path / "data"}, environ={}),
                               queue_agents=agents)


@pytest.fixture
def served_desk(console: Any, desk_settings: Settings, http: Any) -> str:
    """A console over the same store and users as `console`, with operators configured, on a real HTTP server."""
    return http(create_app(desk_settings, store=console.store, live=LiveState(), suggester=console.ctx.suggester))


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright; no browser download)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


def signed_in(browser: Any, url: str, user: str, password: str, **context: Any) -> Any:
    """A new page (`context`: Playwright's options, e.g. the computer's time zone) that opens `url`, is sent to the
    sign-in form, signs in as `user` and lands back on `url`."""
    page = browser.new_page(**context)
    page.goto(url)
    assert "/login" in page.url
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url(url)
    return page


def test_operator_reviews_corrects_and_dispatches_a_ticket(console: Any, served: str, browser: Any) -> None:
    number = console.numbers["c03"]  # 我们楼的电梯坏了一个星期了物业一直不修, 3.25 s
    page = signed_in(browser, f"{served}/tickets", "operator", console.password)

    page.fill("#q", "电梯")
    page.click("#search")
    page.wait_for_url("**/tickets?q=*")
    assert page.inner_text("#count").startswith("1 ")
    page.click(f"a[href='/tickets/{number}']")
    page.wait_for_url(f"{served}/tickets/{number}")

    # transcript and audio are there; the recording loads and plays from the clicked word
    assert page.inner_text("#transcript").replace("\n", "").replace(" ", "") == "我们楼的电梯坏了一个星期了物业一直不修"
    page.wait_for_function("() => document.getElementById('audio').readyState >= 1")  # no eval: CSP
    duration = page.evaluate("() => document.getElementById('audio').duration")
    assert 3.1 < duration < 3.4
    low = page.locator("#transcript .word.low")
    assert low.count() == 2
    word = page.locator("#transcript .word[data-i='5']")
    start = float(word.get_attribute("data-start"))
    old = word.inner_text()
    word.click()
    page.wait_for_function(f"() => document.getElementById('audio').currentTime > {start + 0.05}")
    assert page.evaluate("() => document.getElementById('audio').error") is None

    # the click prepared the correction of that word
    assert page.input_value("#word-index") == "5" and page.input_value("#word-text") == old
    page.fill("#word-text", "一周")
    page.click("#word-save")
    page.wait_for_selector("#msg")
    assert "一周" in page.inner_text("#transcript")

    # correct the category: the department follows it
    page.select_option("#category", "市政设施")
    assert page.input_value("#department") == console.ctx.categories["市政设施"]
    page.click("#dispatch")
    page.wait_for_selector("#msg")
    assert page.inner_text("#msg") == "dispatched"
    assert page.inner_text("#status").startswith("dispatched")

    rows = [[c.strip() for c in r.split("\t")] for r in page.inner_text("#audit tbody").splitlines()]
    assert rows[0][1:6] == ["operator", "word", "word 5", old, "一周"]
    category_rows = [r for r in rows if r[3] == "category"]
    assert category_rows and category_rows[0][1] == "operator" and category_rows[0][5] == "市政设施"
    assert rows[-1][2:6] == ["dispatch", "status", "open", "dispatched"]
    assert console.store.get(number).category == "市政设施"
    page.close()


def test_operator_sets_their_own_state_on_the_live_page(console: Any, desk_settings: Settings, served_desk: str,
                                                       browser: Any) -> None:
    from playwright.sync_api import expect

    directory = directory_for(desk_settings)  # what `ivr serve` would read, on the same database
    page = signed_in(browser, f"{served_desk}/live", "operator", console.password,
                     timezone_id="America/New_York")  # an operator's computer set elsewhere: the hotline's clock
    assert page.inner_text("#me h2") == "我的状态 My state"
    assert page.inner_text("#me-state") == "available"

    page.click("#me button:has-text('签出')")
    expect(page.locator("#me-state")).to_have_text("signed_out")
    expect(page.locator("#agents tbody tr").first).to_contain_text("signed_out")
    assert page.inner_text("#me-error") == ""
    assert {s.agent_id: (s.state, s.changed_by) for s in directory.statuses()} == {
        "op1": (AgentState.SIGNED_OUT, "operator"), "op2": (AgentState.AVAILABLE, "config")}

    page.click("#me button:has-text('就绪')")
    expect(page.locator("#me-state")).to_have_text("available")
    assert directory.get("op1").state == AgentState.AVAILABLE
    since = datetime.fromtimestamp(directory.get("op1").since, ZoneInfo(desk_settings.timezone))
    expect(page.locator("#me-since")).to_have_text(since.strftime("%H:%M:%S"))  # Beijing time, drawn by live.js
    assert [(e.user, e.before, e.after) for e in directory.history("op1")] == [
        ("operator", AgentState.SIGNED_OUT, AgentState.AVAILABLE),
        ("operator", AgentState.AVAILABLE, AgentState.SIGNED_OUT)]
    page.close()

    other = signed_in(browser, f"{served_desk}/live", "supervisor", console.password)  # no operator names them
    assert other.locator("#agents").count() == 1 and other.locator("#me").count() == 0
    other.close()


def test_the_final_transcript_is_shown_with_the_live_one_a_click_away(console: Any, served: str, browser: Any,
                                                                     whisper_engine: Any) -> None:
    from ivr.tickets.transcriber import transcribe_one

    first, waiting = console.numbers["c01"], console.numbers["c02"]
    live = console.store.get(first).transcript
    outcome = transcribe_one(console.store, whisper_engine, console.recordings, "worker-1", 600)  # the oldest job
    assert outcome is not None and outcome.number == first and outcome.stored
    page = signed_in(browser, f"{served}/tickets/{first}", "operator", console.password)
    source = page.inner_text("#transcript-source")
    assert source.startswith("最终 final") and source.endswith("whisper whisper-base"), source
    final = page.inner_text("#transcript").replace("\n", "").replace(" ", "")
    assert final == console.store.get(first).text and "垃圾" in final
    assert not page.is_visible("#live-text")  # a click away
    page.click("#live-transcript summary")
    assert page.is_visible("#live-text") and page.inner_text("#live-text") == live.text
    assert page.locator("#final-pending").count() == 0
    page.goto(f"{served}/tickets/{waiting}")
    assert page.inner_text("#final-pending") == "最终转写等待中 Final transcript queued"
    assert page.inner_text("#transcript-source").startswith("通话中 live")
    assert page.locator("#live-transcript").count() == 0
    page.close()
    client, _ = console.api()
    body = client.get(f"/api/tickets/{first}").json()
    assert body["live_transcript"]["text"] == live.text and body["transcript"]["engine"] == "whisper"


def test_operator_finds_the_answer_beside_the_ticket(kb_console: Any, http: Any, browser: Any) -> None:
    served = http(kb_console.console.app)
    page = signed_in(browser, f"{served}/tickets/{kb_console.number}", "operator", kb_console.console.password)
    assert page.input_value("#kbq") == kb_console.question  # the transcript pre-fills the box
    first = page.locator("#kb-results .kb-hit").first
    assert first.get_attribute("data-id") == "ss_card_lost"
    assert first.locator(".kb-text").inner_text().startswith("挂失：电话、网上或网点")
    assert first.locator(".kb-source").inner_text() == "社会保障卡服务指南"
    assert first.locator(".kb-checked").inner_text() == "2026-12-01"
    assert first.locator(".flag").count() == 0

    page.fill("#kbq", "那个暖气费在哪儿交")
    page.click("#kb-search")
    page.wait_for_url("**kbq=*")
    first = page.locator("#kb-results .kb-hit").first
    assert first.get_attribute("data-id") == "ht_fee"
    assert first.locator(".flag.unverified").inner_text() == "未核实样例 unverified"
    assert page.inner_text("#number") == kb_console.number  # still beside the same ticket
    first.locator("h3 a").click()
    page.wait_for_url(f"{served}/kb/ht_fee")
    assert page.locator("#kb-form").count() == 0  # operators read, supervisors edit
    page.close()


def test_supervisor_edits_an_entry_in_the_browser(kb_console: Any, http: Any, browser: Any) -> None:
    from ivr.kb import KbRegistry

    served = http(kb_console.console.app)
    path = kb_console.kb_dir / "heating.yaml"
    before = path.read_bytes()
    hotline = KbRegistry(kb_console.kb_dir)
    page = signed_in(browser, f"{served}/kb/ht_fee", "supervisor", kb_console.console.password)
    assert "未核实样例 unverified" in page.inner_text("#kb-status")

    page.fill("#kb-edit-spoken", "供暖费" * 45)  # 135 characters: too long to speak
    page.click("#kb-save")
    page.wait_for_selector("#error")
    assert page.inner_text("#error") == "kb/heating.yaml: ht_fee: spoken answer is 34 s, over 30 s"
    assert path.read_bytes() == before and not (kb_console.kb_dir / ".history").exists()

    spoken = "供暖费按建筑面积收取，请在十一月十五日以前向供热单位缴纳，可以去营业厅，也可以用手机缴费。"
    page.fill("#kb-edit-spoken", spoken)
    page.fill("#kb-edit-questions", "取暖费怎么交\n暖气费多少钱一平米\n供暖费交给谁")
    page.select_option("#kb-edit-status", "checked")
    page.fill("#kb-edit-expires", "2027-06-30")
    page.click("#kb-save")
    page.wait_for_selector("#msg")
    assert page.inner_text("#msg") == "saved"
    assert page.inner_text("#kb-spoken").startswith(spoken)
    assert page.inner_text("#kb-status") == "checked"
    assert page.inner_text("#kb-checked") == f"{date.today()} · supervisor"
    assert page.inner_text("#kb-expires") == "2027-06-30"
    assert page.inner_text("#kb-questions") == "取暖费怎么交 / 暖气费多少钱一平米 / 供暖费交给谁"
    row = page.inner_text("#kb-history tbody").split("\t")
    assert row[1:3] == ["supervisor", "spoken, questions, status, expires"]

    text = path.read_text(encoding="utf-8")
    assert f"      {spoken}\n" in text and "      - 供暖费交给谁\n" in text and "expires: 2027-06-30" in text
    [kept] = (kb_console.kb_dir / ".history" / "heating").iterdir()
    assert kept.read_bytes() == before and row[3].strip() == f".history/heating/{kept.name}"
    [line] = (kb_console.kb_dir / ".history" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["user"] == "supervisor"
    entry = hotline.current().get("ht_fee")
    assert entry is not None and entry.spoken == spoken and entry.speakable(date.today())
    assert kb_console.renders.called.wait(600)  # the background render (a bound against a hang, not a speed)
    assert kb_console.renders.done == [("ht_fee", spoken)]
    page.close()
