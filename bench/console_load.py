"""Console under load: 100,000 tickets in SQLite; p50/p95 of list and search requests over real HTTP, FTS5
bigram search against LIKE, and the browser-measured time to open a ticket and have transcript and audio.

    .venv/bin/python bench/console_load.py [--tickets 100000] [--requests 200] [--keep DIR]

The console runs as its own process (uvicorn, `ivr console`'s app) so the client does not share its GIL.
Transcripts are the dispatch catalogue's example sentences with districts, areas and phone numbers mixed in.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import insert, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ivr.console.users import UserStore  # noqa: E402
from ivr.tickets.schema import grams, tickets_table  # noqa: E402
from ivr.tickets.store import TicketStore  # noqa: E402
from ivr.triage.dispatch import load_dispatch_catalogue  # noqa: E402
from ivr.triage.gazetteer import Gazetteer  # noqa: E402
from ivr.triage.suggest import dispatch_suggester  # noqa: E402

PASSWORD = "bench-password-1"
SEARCHES = ["暖气", "电梯", "噪音", "垃圾", "停车", "半夜", "退钱", "物业", "漏水", "路灯",  # common pairs
            "施工", "井盖", "公积金", "回龙观", "不热", "健身卡", "热", "吵",  # more, a miss, single chars
            "半夜 施工", "朝阳区 停车", "物业 不修", "供暖 不热"]  # two terms
FIXTURE_WAVS = ["c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08"]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def line(name: str, ms: list[float]) -> str:
    return (f"  {name:34} n={len(ms):4}  p50 {statistics.median(ms):7.1f} ms  p95 {pct(ms, 95):7.1f} ms  "
            f"max {max(ms):7.1f} ms")


def populate(store: TicketStore, n: int, recordings: Path, data_dir: Path, rng: random.Random) -> None:
    cat = load_dispatch_catalogue()
    districts = Gazetteer.load().districts
    areas = ["望京", "回龙观", "天通苑", "和平里", "金融街", "中关村", "五道口", "双井", "亦庄", "西红门"]
    suggest = dispatch_suggester(data_dir)
    examples = [(c.name, c.department, ex) for c in cat.categories for ex in c.examples]
    samples = {ex: suggest(ex) for _, _, ex in examples}  # one real suggestion per sentence, reused
    (recordings / "bench").mkdir(parents=True, exist_ok=True)
    for fid in FIXTURE_WAVS:
        shutil.copy(REPO / "audio_fixtures" / "zh" / f"{fid}.wav", recordings / "bench" / f"{fid}.wav")
    start = datetime(2026, 9, 1, tzinfo=timezone.utc)
    rows, fts = [], []
    seq_by_day: dict[str, int] = {}
    for i in range(1, n + 1):
        created = start + timedelta(seconds=i * 90 * 86400 // n)
        day = created.strftime("%Y%m%d")
        seq_by_day[day] = seq_by_day.get(day, 0) + 1
        name, dept, ex = examples[rng.randrange(len(examples))]
        district = rng.choice(districts)
        spoken = f"我住在{district}{rng.choice(areas)}，{ex}" if rng.random() < 0.6 else ex
        if rng.random() < 0.3:
            spoken += f"，我的电话是139{rng.randrange(10**8):08d}"
        chunks = [spoken[j:j + 2] for j in range(0, len(spoken), 2)]
        words = [{"word": w, "start": round(k * 0.4, 3), "end": round(k * 0.4 + 0.4, 3),
                  "conf": round(rng.uniform(0.3, 1.0), 4)} for k, w in enumerate(chunks)]
        status = rng.choices(["open", "dispatched", "closed"], [0.3, 0.5, 0.2])[0]
        rows.append(dict(
            id=i, number=f"{day}{seq_by_day[day]:04d}", day=day, seq=seq_by_day[day], created_at=created,
            updated_at=created, caller=f"138{rng.randrange(10**8):08d}", call_id=f"call-{i}", kind="complaint",
            status=status, transcription="done", menu_path='["welcome","main_menu=complaint","complaint"]',
            flags="[]", recording=f"bench/{rng.choice(FIXTURE_WAVS)}.wav", recording_sha256="", audio_ms=len(chunks) * 400,
            transcript=json.dumps({"text": spoken, "raw_text": " ".join(chunks), "engine": "vosk",
                                   "model": "bench", "audio_ms": len(chunks) * 400, "words": words,
                                   "alternatives": []}, ensure_ascii=False),
            text=spoken, category=name, department=dept, district=district,
            urgency=rng.choices(["normal", "urgent", "emergency"], [0.9, 0.08, 0.02])[0], extra="{}",
            suggestion=json.dumps(samples[ex], ensure_ascii=False), contact_name="", callback_number="",
            address="", note="", dispatched_at=created if status != "open" else None,
            dispatched_by="bench" if status != "open" else "",
        ))
        uni, bi = grams(spoken)
        fts.append({"id": i, "uni": uni, "bi": bi})
    with store.engine.begin() as conn:
        for k in range(0, n, 5000):
            conn.execute(insert(tickets_table), rows[k:k + 5000])
            conn.execute(text("INSERT INTO tickets_fts(rowid, uni, bi) VALUES (:id, :uni, :bi)"), fts[k:k + 5000])
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    code = ("import uvicorn; from ivr.config import load_settings; from ivr.console import create_app; "
            f"uvicorn.run(create_app(load_settings(overrides={{'data_dir': {str(data_dir)!r}}}, environ={{}})), "
            f"host='127.0.0.1', port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, text=True)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/login")
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the console did not start")


def timed(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    r = client.get(url, params=params)
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise SystemExit(f"{url} {params}: HTTP {r.status_code} {r.text[:200]}")
    return ms


def http_bench(base: str, n_requests: int, rng: random.Random, store: TicketStore) -> None:
    client = httpx.Client(base_url=base)
    r = client.post("/api/session", json={"username": "bench", "password": PASSWORD})
    r.raise_for_status()
    cat = list(load_dispatch_catalogue().departments())
    districts = Gazetteer.load().districts
    total = store.search().total
    list_params = [
        lambda: {},
        lambda: {"status": rng.choice(["open", "dispatched"])},
        lambda: {"category": rng.choice(cat)},
        lambda: {"district": rng.choice(districts), "status": "open"},
        lambda: {"urgency": "emergency"},
        lambda: {"since": "2026-10-01", "until": "2026-10-07"},
        lambda: {"page": str(rng.randrange(1, 200))},
    ]
    print(f"HTTP, one client, {n_requests} requests each (server: uvicorn, 1 process), {total} tickets:")
    for path, kind in (("/tickets", "list page (HTML)"), ("/api/tickets", "list API (JSON)")):
        ms = []
        for i in range(n_requests):
            p = list_params[i % len(list_params)]()
            if path.startswith("/api") and "page" in p:
                p = {"offset": str((int(p.pop("page")) - 1) * 50)}
            ms.append(timed(client, path, p))
        print(line(kind, ms))
    for path, kind in (("/tickets", "search page (HTML)"), ("/api/tickets", "search API (JSON)")):
        ms = [timed(client, path, {"q": SEARCHES[i % len(SEARCHES)]}) for i in range(n_requests)]
        print(line(kind, ms))
    ms = [timed(client, "/tickets", {"q": SEARCHES[i % len(SEARCHES)], "status": "open",
                                     "district": rng.choice(districts)}) for i in range(n_requests)]
    print(line("search + filters page (HTML)", ms))
    number = store.search().rows[0].number
    ms = [timed(client, f"/tickets/{number}") for _ in range(n_requests // 2)]
    print(line("ticket page (HTML)", ms))


def fts_vs_like(store: TicketStore) -> None:
    print("Search strategy, first page of 50 newest matches + count, in-process (SQLite):")
    from ivr.tickets.model import TicketFilter

    with store.engine.connect() as conn:
        for term in ("暖气", "回龙观", "热", "公积金", "健身卡"):
            t0 = time.perf_counter()
            for _ in range(20):
                page = store.search(TicketFilter(query=term))
            fts_ms = (time.perf_counter() - t0) * 1000 / 20
            t0 = time.perf_counter()
            for _ in range(20):
                conn.execute(text("SELECT id FROM tickets WHERE text LIKE :p ORDER BY id DESC LIMIT 50"),
                             {"p": f"%{term}%"}).all()
                like_total = conn.execute(text("SELECT count(*) FROM tickets WHERE text LIKE :p"),
                                          {"p": f"%{term}%"}).scalar()
            like_ms = (time.perf_counter() - t0) * 1000 / 20
            assert like_total == page.total, (term, like_total, page.total)
            print(f"  {term:8} matches {page.total:6}   FTS5 bigram {fts_ms:6.1f} ms   LIKE scan {like_ms:6.1f} ms")


def browser_bench(base: str, store: TicketStore, n_open: int) -> None:
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    numbers = [r.number for r in store.search(limit=500).rows][::10][:n_open]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags, headless=True)
        page = browser.new_page()
        page.goto(f"{base}/login")
        page.fill("#username", "bench")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(f"{base}/tickets")
        shown, playable = [], []
        for number in numbers:
            page.goto(f"{base}/tickets?q=")
            link = f"/tickets/{number}"
            t0 = time.perf_counter()
            page.goto(f"{base}{link}", wait_until="commit")
            page.wait_for_selector("#transcript .word")
            shown.append((time.perf_counter() - t0) * 1000)
            page.wait_for_function("() => document.getElementById('audio').readyState >= 3")  # can play
            playable.append((time.perf_counter() - t0) * 1000)
        browser.close()
    print(f"Browser (headless Chromium), open a ticket from the list, {len(numbers)} tickets:")
    print(line("transcript shown", shown))
    print(line("transcript + audio ready to play", playable))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--open", type=int, default=20, help="tickets opened in the browser")
    ap.add_argument("--keep", type=Path, help="data folder to keep (default: a temporary one, deleted)")
    args = ap.parse_args()
    rng = random.Random(12345)
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    try:
        store = TicketStore(f"sqlite:///{data_dir / 'ivr.db'}")
        if store.search(limit=1).total == 0:
            t0 = time.perf_counter()
            populate(store, args.tickets, data_dir / "recordings", data_dir, rng)
            print(f"populated {args.tickets} tickets in {time.perf_counter() - t0:.1f} s; database "
                  f"{(data_dir / 'ivr.db').stat().st_size / 2**20:.0f} MiB")
        users = UserStore(store.engine)
        if not any(u.username == "bench" for u in users.list()):
            users.add("bench", PASSWORD, "supervisor")
        fts_vs_like(store)
        port = free_port()
        proc = serve(data_dir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            http_bench(base, args.requests, rng, store)
            browser_bench(base, store, args.open)
        finally:
            proc.terminate()
            proc.wait()
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
