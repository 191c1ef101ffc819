"""The worker of the post-call transcription jobs (`ivr.tickets.jobs`): claim a job, check and read its recording,
transcribe it with the second-pass engine, commit the result once.

`work_off` runs jobs one after another until stopped, and takes a job only while `spare()` says live recognition
has room to spare (a job in progress is not interrupted); `ivr serve` runs it on a thread `nice` steps below the
calls, `ivr transcribe worker` as a process of its own (possibly on another machine sharing the ticket store),
`ivr tickets transcribe --pending` until no ticket is waiting.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from asr.audio import FRAME_BYTES, read_wav
from asr.engine import Engine
from asr.errors import AudioFormatError
from ivr.storage import problem
from ivr.tickets.store import TicketStore

__all__ = ["JobOutcome", "transcribe_one", "work_off", "lower_priority"]

log = logging.getLogger(__name__)

CHUNK_BYTES = FRAME_BYTES * 25  # half a second at a time into the recogniser


@dataclass(frozen=True)
class JobOutcome:
    """What one job did: the ticket, its new text (None: unchanged), the failure, whether the result was stored."""

    number: str
    text: str | None
    error: str = ""
    stored: bool = True

    def line(self) -> str:
        """One line for a command's output."""
        said = (f"failed: {self.error}" if self.error else "already transcribed by this engine" if self.text is None
                else self.text or "(nothing recognised)")
        return f"{self.number}  {said}" + ("" if self.stored else "  (not stored: the job was taken over)")


def transcribe_one(store: TicketStore, engine: Engine, recordings_dir: Path, owner: str, lease_s: float, *,
                   pending_only: bool = False, shared_dir: Path | None = None,
                   node: str | None = None) -> JobOutcome | None:
    """Claim the oldest free job (of `node`'s recordings only, unless None) and do it; None when there is none.
    The recording is read from `recordings_dir`, else from the centre's `shared_dir`."""
    job = store.claim(owner, lease_s, pending_only=pending_only, node=node)
    if job is None:
        return None
    ticket = store.get(job.number)
    done = ticket.transcript
    if done is not None and (done.engine, done.model) == (engine.name, engine.model_name):
        log.info("ticket %s: already transcribed by %s %s", job.number, engine.name, engine.model_name)
        return JobOutcome(job.number, None, stored=store.finish(job, None))
    check = store.verify_recording(job.number, recordings_dir, shared_dir)
    reason = ""
    pcm = b""
    if not check.ok and check.problem != "no checksum":
        reason = f"recording {check.problem}"
    else:
        try:
            pcm = read_wav(check.path)
        except AudioFormatError as exc:
            reason = str(exc)
    if reason:
        log.warning("ticket %s: %s", job.number, reason)
        return JobOutcome(job.number, None, reason, store.fail(job, reason))
    log.info("ticket %s: transcribing %d ms with %s %s (attempt %d)", job.number, len(pcm) // 16, engine.name,
             engine.model_name, job.attempts)
    rec = engine.recognizer()
    for i in range(0, len(pcm), CHUNK_BYTES):
        rec.accept(pcm[i:i + CHUNK_BYTES])
    transcript = rec.final()
    engine.release(rec)
    stored = store.finish(job, transcript)
    log.info("ticket %s: transcribed (%d characters)%s", job.number, len(transcript.text),
             "" if stored else ", not stored: the job was taken over")
    return JobOutcome(job.number, transcript.text, stored=stored)


def lower_priority(nice: int) -> None:
    """Run the calling thread `nice` steps below the process (Linux: per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
    except OSError:
        pass


def work_off(store: TicketStore, engine: Engine, recordings_dir: Path, *, owner: str, lease_s: float,
             stop: threading.Event, spare: Callable[[], bool] | None = None, idle_s: float = 2.0,
             until_empty: bool = False, pending_only: bool = False, shared_dir: Path | None = None,
             node: str | None = None, progress: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:
    """Do jobs one at a time until `stop` (or, `until_empty`, until none is free), each only while `spare()`
    (None: always); returns what each did."""
    outcomes: list[JobOutcome] = []
    while not stop.is_set():
        if spare is not None and not spare():
            stop.wait(idle_s)
            continue
        try:
            outcome = transcribe_one(store, engine, recordings_dir, owner, lease_s, pending_only=pending_only,
                                     shared_dir=shared_dir, node=node)
        except (SQLAlchemyError, OSError) as exc:  # the store is unreachable or its disk full: try again later
            log.error("transcription worker: %s", problem(exc))
            stop.wait(idle_s)
            continue
        if outcome is None:
            if until_empty:
                break
            stop.wait(idle_s)
            continue
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
