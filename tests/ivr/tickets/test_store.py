"""The ticket store on SQLite (test_postgres.py runs these same tests on a real PostgreSQL server)."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from asr.audio import read_wav
from asr.results import Transcript, Word
from ivr.tickets.model import TicketEditError, TicketFilter, TicketNotFound
from ivr.tickets.schema import fts_query
from ivr.tickets.store import TicketStore
from ivr.triage.suggest import dispatch_suggester

REPO = Path(__file__).resolve().parents[3]
C01 = REPO / "audio_fixtures" / "zh" / "c01.wav"
DAY = datetime(2026, 3, 5, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def suggester(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real dispatch suggester, its model trained once from the shipped catalogue."""
    return dispatch_suggester(tmp_path_factory.mktemp("dispatch"))


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'ivr.db'}"


@pytest.fixture
def store(store_url: str, suggester) -> TicketStore:  # type: ignore[no-untyped-def]
    return TicketStore(store_url, suggest=suggester)


def words(text: str, conf: float = 0.9) -> Transcript:
    """A transcript whose words are the text's two-character chunks, 0.5 s each."""
    chunks = [text[i:i + 2] for i in range(0, len(text), 2)]
    return Transcript(text=text, words=tuple(Word(c, i * 0.5, i * 0.5 + 0.5, conf) for i, c in enumerate(chunks)),
                      engine="vosk", model="test", raw_text=" ".join(chunks))


def new(store: TicketStore, text: str | None = None, now: datetime = DAY, recording: str = "d/a.wav") -> str:
    t = store.create(caller="13800138000", call_id="call-1", kind="complaint", menu_path=["main", "complaint"],
                     flags=[], recording=recording, now=now)
    store.complete_recording(t.number, audio_ms=3000, sha256="", transcript=words(text) if text else None)
    return t.number


def test_numbers_are_day_and_sequence_and_spoken_digit_by_digit(store: TicketStore) -> None:
    a = store.create(caller="1", call_id="x", kind="complaint", menu_path=[], flags={"elderly"}, recording="r.wav",
                     now=DAY)
    b = store.create(caller="1", call_id="y", kind="complaint", menu_path=[], flags=[], recording="s.wav", now=DAY)
    c = store.create(caller="1", call_id="z", kind="complaint", menu_path=[], flags=[], recording="t.wav",
                     now=datetime(2026, 3, 6, 0, 1, tzinfo=timezone.utc))
    assert (a.number, b.number, c.number) == ("20260305001", "20260305002", "20260306001")
    assert a.spoken_number == "二 零 二 六 零 三 零 五 零 零 幺"
    assert a.flags == ("elderly",) and a.transcription.value == "recording" and a.status == "open"
    assert a.created_at == DAY


def test_numbers_and_date_filters_follow_the_hotlines_day_not_utcs(store: TicketStore, store_url: str) -> None:
    early = datetime(2026, 3, 5, 23, 30, tzinfo=timezone.utc)  # 07:30 on 6 March in Beijing: a caller's morning
    assert store.create(caller="1", call_id="x", kind="complaint", menu_path=[], flags=[], recording="r.wav",
                        now=early).number == "20260306001"
    assert [r.number for r in store.search(TicketFilter(since=date(2026, 3, 6), until=date(2026, 3, 6))).rows] == [
        "20260306001"]
    assert not store.search(TicketFilter(until=date(2026, 3, 5))).rows
    utc = TicketStore(store_url, tz=timezone.utc)  # a hotline kept on UTC: the same moment is still the 5th there
    assert utc.create(caller="1", call_id="y", kind="complaint", menu_path=[], flags=[], recording="s.wav",
                      now=early).number == "20260305001"
    assert len(utc.search(TicketFilter(until=date(2026, 3, 5))).rows) == 2  # both were made at that moment


def test_pending_then_transcript_brings_the_dispatch_suggestion(store: TicketStore) -> None:
    number = new(store)
    assert [t.number for t in store.pending()] == [number]
    assert store.get(number).suggestion is None
    t = store.set_transcript(number, words("朝阳区望京街道的工地半夜还在施工太吵了我叫王小明电话13912345678"))
    assert store.pending() == [] and t.transcription.value == "done"
    s = t.suggestion
    assert s is not None and len(s["categories"]) == 3
    assert s["categories"][0]["category"] == "施工噪音" and s["categories"][0]["score"] > s["categories"][1]["score"]
    assert s["categories"][0]["evidence"], "the terms that weighed are kept"
    assert s["district"] == "朝阳区" and s["location"]["district_evidence"]["text"] == "朝阳区"
    assert s["autofill"]["phone"]["digits"] == "13912345678"
    assert s["urgency_level"] == "normal"
    # the fields nobody has set yet are prefilled from the suggestion
    assert (t.category, t.district, t.urgency) == ("施工噪音", "朝阳区", "normal")
    assert t.department == s["categories"][0]["department"]


def test_urgent_transcript_is_flagged(store: TicketStore) -> None:
    t = store.get(new(store, "我家楼道里有很大的煤气味邻居家没人"))
    assert t.urgency == "emergency" and t.suggestion["transfer_now"] is True  # type: ignore[index]
    assert "燃气泄漏" in t.suggestion["urgency_reasons"]  # type: ignore[index]


def test_suggestion_refresh_keeps_what_an_operator_set(store: TicketStore) -> None:
    number = new(store, "东城区的路灯坏了好几天晚上特别黑")
    store.update(number, "op", {"category": "市政设施", "district": "西城区"})
    t = store.refresh_suggestion(number)
    assert (t.category, t.district) == ("市政设施", "西城区")


def test_failed_transcription_keeps_the_reason(store: TicketStore) -> None:
    number = new(store)
    t = store.set_transcription_failed(number, "recording missing")
    assert t.transcription.value == "failed" and t.extra["transcription_error"] == "recording missing"


def test_filters_search_and_pages(store: TicketStore) -> None:
    heat = new(store, "我家暖气一点都不热屋里才十四度", now=datetime(2026, 1, 10, tzinfo=timezone.utc))
    noise = new(store, "楼上邻居每天半夜装修噪音太大", now=datetime(2026, 1, 12, tzinfo=timezone.utc))
    light = new(store, "朝阳区的路灯坏了晚上很黑", now=datetime(2026, 1, 14, tzinfo=timezone.utc))
    store.update(heat, "op", {"category": "供暖", "district": "海淀区"})
    store.update(noise, "op", {"category": "生活噪音", "department": "派出所"})
    store.dispatch(noise, "op")

    def numbers(**kw: object) -> list[str]:
        return [r.number for r in store.search(TicketFilter(**kw)).rows]  # type: ignore[arg-type]

    assert numbers() == [light, noise, heat]  # newest first
    assert numbers(status="dispatched") == [noise]
    assert numbers(category="供暖") == [heat]
    assert numbers(district="海淀区") == [heat]
    assert numbers(since=date(2026, 1, 11), until=date(2026, 1, 12)) == [noise]
    assert numbers(until=date(2026, 1, 10)) == [heat]
    assert numbers(since=date.min, until=date.max) == [light, noise, heat]  # the first and last days there are
    assert numbers(query="暖气") == [heat]
    assert numbers(query="十四度") == [heat]  # a phrase: the three characters in a row
    assert numbers(query="热") == [heat]  # one character
    assert numbers(query="半夜 噪音") == [noise]  # every part
    assert numbers(query="半夜 路灯") == []
    assert numbers(query="暖热") == []  # both characters, but not next to each other
    assert numbers(query="很黑", status="open") == [light]
    page = store.search(TicketFilter(), limit=2, offset=0)
    assert page.total == 3 and len(page.rows) == 2
    page = store.search(TicketFilter(), limit=2, offset=2)
    assert page.total == 3 and [r.number for r in page.rows] == [heat]
    assert [r.number for r in store.iter_rows(TicketFilter(), batch=2)] == [light, noise, heat]


def test_fts_query_quotes_every_term() -> None:
    assert fts_query("暖气 不热") == 'bi : "暖气" AND bi : "不热"'
    assert fts_query('热 "OR') == 'uni : "热" AND bi : "or"'  # quotes dropped, case folded
    assert fts_query("  ,, ") == ""


def test_operator_edits_are_audited(store: TicketStore) -> None:
    number = new(store, "我家暖气一点都不热屋里才十四度")
    before = store.get(number)
    store.update(number, "wang", {"district": "丰台区", "note": "回访过", "category": before.category})
    trail = store.audit(number)
    assert [(e.user, e.action, e.field, e.before, e.after) for e in trail] == [
        ("wang", "edit", "district", before.district, "丰台区"),
        ("wang", "edit", "note", "", "回访过"),
    ]  # an unchanged category is no change
    assert trail[0].at.tzinfo is not None


def test_edit_errors_name_the_problem(store: TicketStore) -> None:
    number = new(store, "路灯坏了")
    with pytest.raises(TicketEditError, match="^fields cannot be edited: status, text$"):
        store.update(number, "op", {"text": "x", "status": "closed"})
    with pytest.raises(TicketEditError, match="^district is longer than 32 characters$"):
        store.update(number, "op", {"note": "ok", "district": "区" * 33})
    assert store.get(number).note == "" and store.audit(number) == []  # nothing half-done
    with pytest.raises(TicketNotFound, match="^no ticket 1$"):
        store.update("1", "op", {"note": "x"})


def test_word_correction_changes_text_index_and_trail(store: TicketStore) -> None:
    number = new(store, "我家暖气一点都不热")  # words: 我家 暖气 一点 都不 热
    t = store.correct_word(number, "li", 1, "燃气")
    assert t.text == "我家燃气一点都不热"
    assert t.transcript.words[1].text == "燃气" and t.transcript.words[1].conf == 1.0  # type: ignore[union-attr]
    assert [r.number for r in store.search(TicketFilter(query="燃气")).rows] == [number]
    assert store.search(TicketFilter(query="暖气")).rows == ()
    [entry] = store.audit(number)
    assert (entry.user, entry.action, entry.field, entry.before, entry.after) == ("li", "word", "word 1", "暖气", "燃气")
    with pytest.raises(TicketEditError, match=f"^ticket {number} has no word 9$"):
        store.correct_word(number, "li", 9, "x")
    with pytest.raises(TicketEditError, match="^a corrected word must be one word without spaces$"):
        store.correct_word(number, "li", 0, "a b")


def test_dispatch_and_corrections_for_retraining(store: TicketStore) -> None:
    a = new(store, "朝阳区的工地半夜还在施工太吵了")
    b = new(store, "我家暖气一点都不热屋里才十四度")
    suggested = store.get(a).category
    store.update(a, "op", {"category": "生活噪音"})
    store.update(a, "op", {"category": "市政设施"})  # the latest judgement replaces the earlier one
    t = store.dispatch(a, "op", {"department": "区城管委"})
    assert t.status == "dispatched" and t.dispatched_by == "op" and t.dispatched_at is not None
    store.dispatch(b, "op")  # accepted as suggested: no correction
    [corr] = store.corrections()
    assert (corr.ticket_number, corr.suggested, corr.category, corr.user) == (a, suggested, "市政设施", "op")
    assert store.training_pairs() == [("朝阳区的工地半夜还在施工太吵了", "市政设施")]
    assert [e.action for e in store.audit(a)][-1] == "dispatch"
    with pytest.raises(TicketEditError, match=f"^ticket {a} is dispatched, not open$"):
        store.dispatch(a, "op")
    store.set_status(a, "boss", "open")
    assert store.audit(a)[-1].action == "reopen" and store.get(a).status == "open"


def test_dispatch_needs_category_and_department(store: TicketStore) -> None:
    number = new(store)  # no transcript, so nothing suggested
    with pytest.raises(TicketEditError, match="^a ticket needs a category and a department to be dispatched$"):
        store.dispatch(number, "op", {"category": "供暖"})
    assert store.get(number).status == "open" and store.audit(number) == []


def test_recording_checksum_verification(store: TicketStore, tmp_path: Path) -> None:
    rec_dir = tmp_path / "recordings"
    (rec_dir / "d").mkdir(parents=True)
    shutil.copy(C01, rec_dir / "d" / "a.wav")
    t = store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="d/a.wav")
    store.complete_recording(t.number, audio_ms=1, sha256=hashlib.sha256(C01.read_bytes()).hexdigest(),
                             transcript=None)
    assert store.verify_recording(t.number, rec_dir).ok
    with open(rec_dir / "d" / "a.wav", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    check = store.verify_recording(t.number, rec_dir)
    assert not check.ok and check.problem == "checksum mismatch" and check.actual != check.expected
    (rec_dir / "d" / "a.wav").unlink()
    assert store.verify_recording(t.number, rec_dir).problem == "missing"
    evil = store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="../../etc/passwd")
    assert store.verify_recording(evil.number, rec_dir).problem == "outside the recordings folder"
    with pytest.raises(PermissionError, match="recording path leaves the recordings folder"):
        TicketStore.recording_file(evil, rec_dir)


def test_a_skeleton_database_is_upgraded_in_place(tmp_path: Path) -> None:
    """A database written before migrations existed (no alembic_version) keeps its tickets and gains the rest."""
    from ivr.tickets.migrations.versions import __name__ as _  # noqa: F401  (the package is importable)

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("""CREATE TABLE tickets (id INTEGER PRIMARY KEY, number VARCHAR(32) NOT NULL UNIQUE,
        day VARCHAR(8) NOT NULL, seq INTEGER NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
        caller VARCHAR(64) NOT NULL, call_id VARCHAR(128) NOT NULL, kind VARCHAR(32) NOT NULL,
        status VARCHAR(16) NOT NULL, transcription VARCHAR(16) NOT NULL, menu_path TEXT NOT NULL,
        flags TEXT NOT NULL, recording TEXT NOT NULL, recording_sha256 VARCHAR(64) NOT NULL,
        audio_ms INTEGER NOT NULL, transcript TEXT, text TEXT NOT NULL, category VARCHAR(64) NOT NULL,
        department VARCHAR(128) NOT NULL, district VARCHAR(32) NOT NULL, urgency VARCHAR(16) NOT NULL,
        extra TEXT NOT NULL)""")
    con.execute("""INSERT INTO tickets VALUES (1, '20260101001', '20260101', 1, '2026-01-01 08:00:00',
        '2026-01-01 08:00:00', '13800138000', 'c', 'complaint', 'open', 'done', '[]', '[]', 'a.wav', '', 1000,
        NULL, '小区垃圾没人清理', '', '', '', '', '{}')""")
    con.commit()
    con.close()
    store = TicketStore(f"sqlite:///{path}")
    assert [r.number for r in store.search(TicketFilter(query="垃圾")).rows] == ["20260101001"]
    t = store.update("20260101001", "op", {"category": "环境卫生"})
    assert t.category == "环境卫生" and store.audit(t.number)[0].after == "环境卫生"
    version = sqlite3.connect(path).execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert version == "0004"
    assert store.job_counts() == {"queued": 0, "running": 0, "done": 0, "failed": 0}  # a done ticket needs no job
    assert store.get("20260101001").node == ""  # recorded before nodes were told apart
    TicketStore(f"sqlite:///{path}")  # opening again is a no-op


def test_concurrent_writers_get_distinct_numbers(store_url: str) -> None:
    s = TicketStore(store_url)
    numbers: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            t = s.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="a.wav")
            with lock:
                numbers.append(t.number)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(numbers) == 40 and len(set(numbers)) == 40


@pytest.mark.vosk_model
def test_transcribe_pending_backlog_with_the_real_model(tmp_path: Path, ko_model_dir: Path) -> None:
    """`ivr tickets transcribe --pending`: good recordings are transcribed and get a suggestion, an altered
    or missing one marks its ticket failed with the reason, and the command says so."""
    from typer.testing import CliRunner

    from ivr.cli import app

    data = tmp_path / "data"
    rec_dir = data / "recordings" / "20260305"
    rec_dir.mkdir(parents=True)
    store = TicketStore(f"sqlite:///{data / 'ivr.db'}")
    numbers = []
    for name in ("good", "altered", "missing"):
        shutil.copy(C01, rec_dir / f"{name}.wav")
        t = store.create(caller="1", call_id=name, kind="complaint", menu_path=[], flags=[],
                         recording=f"20260305/{name}.wav")
        store.complete_recording(t.number, audio_ms=4260, transcript=None,
                                 sha256=hashlib.sha256(C01.read_bytes()).hexdigest())
        numbers.append(t.number)
    (rec_dir / "altered.wav").write_bytes(C01.read_bytes()[:-3200])
    (rec_dir / "missing.wav").unlink()
    result = CliRunner().invoke(app, ["tickets", "transcribe", "--pending", "--model", str(ko_model_dir)],
                                env={"IVR_DATA_DIR": str(data)})
    assert result.exit_code == 1, result.output
    assert "transcribed 1, failed 2" in result.output
    good, altered, missing = (store.get(n) for n in numbers)
    assert good.transcription.value == "done" and good.transcript is not None
    assert good.transcript.engine == "vosk" and good.transcript.words
    assert 4000 <= good.transcript.audio_ms <= 4400
    assert good.suggestion is not None and len(good.suggestion["categories"]) == 3
    assert altered.transcription.value == "failed"
    assert altered.extra["transcription_error"] == "recording checksum mismatch"
    assert missing.extra["transcription_error"] == "recording missing"
    assert store.pending() == []


@pytest.mark.vosk_model
def test_interrupted_recordings_are_recovered_and_transcribed(tmp_path: Path, ko_model_dir: Path) -> None:
    """A call that died mid-message leaves a "recording" ticket and a WAV whose header says 0 bytes."""
    from typer.testing import CliRunner

    from ivr.cli import app
    from ivr.media.recording import HEADER_BYTES, RecordingWriter

    data = tmp_path / "data"
    store = TicketStore(f"sqlite:///{data / 'ivr.db'}")
    pcm = read_wav(C01)
    path = data / "recordings" / "20260305" / "died.wav"
    writer = RecordingWriter(path, flush_every=1)
    for i in range(0, len(pcm), 320):
        writer.write(pcm[i:i + 320])
    writer._f.flush()  # the process dies here: the header still says 0 bytes
    assert path.read_bytes()[40:44] == b"\x00\x00\x00\x00"
    old = store.create(caller="1", call_id="died", kind="complaint", menu_path=[], flags=[],
                       recording="20260305/died.wav", now=datetime(2026, 3, 5, tzinfo=timezone.utc))
    fresh = store.create(caller="1", call_id="live", kind="complaint", menu_path=[], flags=[],
                         recording="20260305/live.wav")  # a call still in progress is left alone
    result = CliRunner().invoke(app, ["tickets", "transcribe", "--pending", "--interrupted", "--no-suggest",
                                      "--model", str(ko_model_dir)], env={"IVR_DATA_DIR": str(data)})
    writer._f.close()
    assert result.exit_code == 0, result.output
    assert f"{old.number}  recovered an interrupted recording" in result.output
    t = store.get(old.number)
    assert t.transcription.value == "done" and t.transcript is not None and t.transcript.audio_ms > 4000
    assert t.audio_ms == len(pcm) * 1000 // 16000 and path.stat().st_size == HEADER_BYTES + len(pcm)
    assert store.verify_recording(old.number, data / "recordings").ok
    assert store.get(fresh.number).transcription.value == "recording"


def test_transcribe_needs_pending_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ivr.cli import app

    result = CliRunner().invoke(app, ["tickets", "transcribe"], env={"IVR_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1 and "ivr: say which tickets: --pending" in result.output


def test_verify_command_reports_altered_recordings(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ivr.cli import app

    data = tmp_path / "data"
    (data / "recordings").mkdir(parents=True)
    store = TicketStore(f"sqlite:///{data / 'ivr.db'}")
    numbers = []
    for name in ("a", "b"):
        shutil.copy(C01, data / "recordings" / f"{name}.wav")
        t = store.create(caller="1", call_id=name, kind="complaint", menu_path=[], flags=[], recording=f"{name}.wav")
        store.complete_recording(t.number, audio_ms=1, sha256=hashlib.sha256(C01.read_bytes()).hexdigest(),
                                 transcript=None)
        numbers.append(t.number)
    env = {"IVR_DATA_DIR": str(data)}
    result = CliRunner().invoke(app, ["tickets", "verify"], env=env)
    assert result.exit_code == 0 and "2 of 2 recordings verified" in result.output
    (data / "recordings" / "b.wav").write_bytes(b"RIFF....")
    result = CliRunner().invoke(app, ["tickets", "verify"], env=env)
    assert result.exit_code == 1 and f"{numbers[1]}  checksum mismatch" in result.output
    assert "1 of 2 recordings verified" in result.output


def test_only_one_nodes_interrupted_recordings_are_recovered_and_flagged(store: TicketStore, tmp_path: Path) -> None:
    from ivr.media.recording import HEADER_BYTES, RecordingWriter
    from ivr.tickets.recovery import recover_interrupted

    rec = tmp_path / "rec"
    numbers = {}
    for node in ("a", "b"):
        writer = RecordingWriter(rec / f"{node}.wav", flush_every=1)
        for _ in range(10):
            writer.write(b"\x01\x00" * 160)
        writer._f.close()  # the process died: the header still says no audio
        numbers[node] = store.create(caller="1", call_id=node, kind="complaint", menu_path=[], flags=["elderly"],
                                     recording=f"{node}.wav", node=node).number
    assert [t.number for t in store.interrupted(datetime.now(timezone.utc), node="a")] == [numbers["a"]]
    assert recover_interrupted(store, rec, datetime.now(timezone.utc), node="a") == [numbers["a"]]
    a, b = store.get(numbers["a"]), store.get(numbers["b"])
    assert (a.transcription.value, a.flags, a.audio_ms, a.node) == ("pending", ("elderly", "interrupted"), 200, "a")
    assert (rec / "a.wav").read_bytes()[40:44] == (3200).to_bytes(4, "little")
    assert store.verify_recording(a.number, rec).ok
    assert b.transcription.value == "recording" and (rec / "b.wav").stat().st_size == HEADER_BYTES + 3200


def test_a_ticket_whose_recording_was_lost_stays_without_audio(store: TicketStore) -> None:
    t = store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[],
                     recording=lambda number: f"{number}.wav")
    assert t.recording == f"{t.number}.wav"
    lost = store.recording_lost(t.number, "recordings folder /r: disk full")
    assert (lost.transcription.value, lost.recording, lost.audio_ms) == ("failed", "", 0)
    assert lost.extra == {"transcription_error": "no recording: recordings folder /r: disk full",
                          "recording_error": "recordings folder /r: disk full"}
