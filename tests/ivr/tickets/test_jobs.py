"""The durable transcription job list on SQLite (test_postgres.py runs these same tests on PostgreSQL): one job per
recording, leased, taken up again after a worker dies, its result committed once; the final transcript beside the
live one with the dispatch fields recomputed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asr.results import Transcript, Word
from ivr.tickets.jobs import MAX_ATTEMPTS, JobState
from ivr.tickets.model import TicketFilter
from ivr.tickets.store import TicketStore

T0 = datetime(2026, 3, 5, 9, 30, tzinfo=timezone.utc)
CATEGORIES = {"垃圾": ("环境卫生", "城管委"), "噪音": ("施工噪音", "生态环境局"), "电梯": ("物业管理", "住建委")}


def keyword_suggester(text: str) -> dict[str, Any]:
    """A stand-in for the dispatch model (this file tests the store's logic): the category of the first keyword."""
    category, department = next((v for k, v in CATEGORIES.items() if k in text), ("其他", ""))
    return {"category": category, "department": department, "district": "朝阳区" if "朝阳" in text else None,
            "urgency_level": "urgent" if "危险" in text else "normal"}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'ivr.db'}"


@pytest.fixture
def jobs_store(store_url: str) -> TicketStore:
    return TicketStore(store_url, suggest=keyword_suggester)


def said(text: str, engine: str = "vosk", model: str = "small") -> Transcript:
    return Transcript(text=text, words=tuple(Word(c, i * 0.3, i * 0.3 + 0.3, 0.8) for i, c in enumerate(text)),
                      engine=engine, model=model)


def recorded(store: TicketStore, live: str | None) -> str:
    t = store.create(caller="13800138000", call_id="c", kind="complaint", menu_path=[], flags=[],
                     recording="d/a.wav", now=T0)
    store.complete_recording(t.number, audio_ms=3000, sha256="", transcript=said(live) if live else None)
    return t.number


def test_every_finished_recording_gets_one_job(jobs_store: TicketStore) -> None:
    with_live, without = recorded(jobs_store, "楼下垃圾没人清理"), recorded(jobs_store, None)
    assert jobs_store.job_counts() == {"queued": 2, "running": 0, "done": 0, "failed": 0}
    assert jobs_store.enqueue(with_live) is False and jobs_store.enqueue_pending() == 0
    info = jobs_store.job(without)
    assert info is not None and (info.state, info.attempts, info.owner) == (JobState.QUEUED, 0, "")
    unfinished = jobs_store.create(caller="1", call_id="x", kind="complaint", menu_path=[], flags=[],
                                   recording="d/b.wav")
    assert jobs_store.job(unfinished.number) is None  # still recording: nothing to transcribe yet


def test_the_final_transcript_keeps_the_live_one_and_redoes_the_suggestion(jobs_store: TicketStore) -> None:
    number = recorded(jobs_store, "楼下电梯坏了")
    live = jobs_store.get(number)
    assert (live.category, live.department) == ("物业管理", "住建委")
    jobs_store.update(number, "op1", {"district": "西城区"})  # an operator's own value is never overwritten
    job = jobs_store.claim("w1", 60, now=T0)
    assert job is not None and (job.number, job.attempts) == (number, 1)
    assert jobs_store.finish(job, said("朝阳区工地噪音太大很危险", "whisper", "whisper-base"))
    final = jobs_store.get(number)
    assert final.transcript is not None and final.live_transcript is not None
    assert (final.transcript.engine, final.transcript.model, final.text) == ("whisper", "whisper-base",
                                                                           "朝阳区工地噪音太大很危险")
    assert (final.live_transcript.engine, final.live_transcript.text) == ("vosk", "楼下电梯坏了")
    assert (final.category, final.department, final.urgency, final.district) == ("施工噪音", "生态环境局", "urgent",
                                                                                 "西城区")
    assert final.suggestion is not None and final.suggestion["category"] == "施工噪音"
    assert [r.number for r in jobs_store.search(TicketFilter(query="噪音")).rows] == [number]
    assert jobs_store.job_counts()["done"] == 1 and jobs_store.claim("w1", 60) is None


def test_a_pending_ticket_gets_its_only_transcript(jobs_store: TicketStore) -> None:
    number = recorded(jobs_store, None)
    job = jobs_store.claim("w1", 60, pending_only=True)
    assert job is not None and jobs_store.finish(job, said("小区垃圾没人清理", "whisper", "whisper-base"))
    t = jobs_store.get(number)
    assert t.transcription.value == "done" and t.live_transcript is None and t.category == "环境卫生"


def test_a_dead_workers_job_is_taken_over_and_its_late_result_is_not_stored(jobs_store: TicketStore) -> None:
    number = recorded(jobs_store, None)
    first = jobs_store.claim("w1", 10, now=T0)
    assert first is not None
    assert jobs_store.claim("w2", 10, now=T0 + timedelta(seconds=9)) is None  # still held
    second = jobs_store.claim("w2", 10, now=T0 + timedelta(seconds=11))
    assert second is not None and (second.id, second.attempts, second.owner) == (first.id, 2, "w2")
    assert not jobs_store.finish(first, said("电梯", "whisper", "b"))  # w1 was only slow: its result is refused
    assert jobs_store.get(number).transcript is None
    assert jobs_store.finish(second, said("垃圾", "whisper", "b"))
    assert not jobs_store.finish(second, said("噪音", "whisper", "b"))  # committed once
    assert not jobs_store.fail(first, "late")
    t = jobs_store.get(number)
    assert t.text == "垃圾" and t.category == "环境卫生"
    info = jobs_store.job(number)
    assert info is not None and (info.state, info.attempts, info.owner) == (JobState.DONE, 2, "w2")


def test_a_job_that_kills_its_worker_every_time_is_given_up(jobs_store: TicketStore) -> None:
    number = recorded(jobs_store, None)
    at = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = jobs_store.claim(f"w{attempt}", 10, now=at)
        assert job is not None and job.attempts == attempt
        at += timedelta(seconds=11)
    assert jobs_store.claim("w9", 10, now=at) is None
    info = jobs_store.job(number)
    assert info is not None and info.state == JobState.FAILED
    assert info.error == "gave up after 3 attempts (the worker stopped each time)"
    t = jobs_store.get(number)
    assert t.transcription.value == "failed" and t.extra["transcription_error"] == info.error
    assert jobs_store.enqueue_pending() == 0  # failed, not pending: `--pending` does not retry it blindly


def test_a_recording_that_cannot_be_read_fails_the_final_pass_but_keeps_the_live_text(jobs_store: TicketStore) -> None:
    number = recorded(jobs_store, "楼下垃圾没人清理")
    job = jobs_store.claim("w1", 60)
    assert job is not None and jobs_store.fail(job, "recording missing")
    t = jobs_store.get(number)
    assert t.transcription.value == "done" and t.text == "楼下垃圾没人清理"
    assert t.extra["final_transcription_error"] == "recording missing"


def test_a_worker_without_the_shared_folder_takes_only_its_own_nodes_recordings(jobs_store: TicketStore) -> None:
    numbers = {}
    for node in ("node-a", "node-b", ""):  # "": recorded before nodes were told apart
        t = jobs_store.create(caller="1", call_id=node or "old", kind="complaint", menu_path=[], flags=[],
                              recording=f"d/{node or 'old'}.wav", node=node, now=T0)
        jobs_store.complete_recording(t.number, audio_ms=1000, sha256="", transcript=None)
        numbers[node] = t.number
    mine = [jobs_store.claim("a-worker", 60, node="node-a") for _ in range(3)]
    assert [j.number if j else None for j in mine] == [numbers["node-a"], numbers[""], None]
    anyone = jobs_store.claim("shared-worker", 60)  # reads the shared folder: any node's
    assert anyone is not None and anyone.number == numbers["node-b"]
