"""The transcription backlog: tickets whose recording has no transcript yet (no model when they were recorded,
live recognition too busy for them, or recovered after a crash). `ivr tickets transcribe --pending` works it off by
hand; `ivr serve` works it off while live recognition has room to spare (`work_off_backlog`)."""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asr.audio import FRAME_BYTES, read_wav
from asr.errors import AudioFormatError
from asr.engine import Engine
from asr.load import Admission
from ivr.tickets.store import TicketStore

__all__ = ["BacklogResult", "transcribe_backlog", "work_off_backlog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacklogResult:
    done: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (number, reason)


def transcribe_backlog(store: TicketStore, engine: Engine, recordings_dir: Path, limit: int | None = None,
                       progress: Callable[[str, str], None] | None = None) -> BacklogResult:
    """Transcribe every pending ticket's recording; a recording that is missing, altered or unreadable marks
    its ticket failed with the reason."""
    done: list[str] = []
    failed: list[tuple[str, str]] = []
    for ticket in store.pending(limit):
        check = store.verify_recording(ticket.number, recordings_dir)
        reason = ""
        if not check.ok and check.problem != "no checksum":
            reason = f"recording {check.problem}"
        else:
            try:
                pcm = read_wav(check.path)
            except AudioFormatError as exc:
                reason = str(exc)
        if reason:
            store.set_transcription_failed(ticket.number, reason)
            failed.append((ticket.number, reason))
            log.warning("ticket %s: %s", ticket.number, reason)
            continue
        rec = engine.recognizer()
        for i in range(0, len(pcm), FRAME_BYTES * 25):
            rec.accept(pcm[i:i + FRAME_BYTES * 25])
        transcript = rec.final()
        engine.release(rec)
        store.set_transcript(ticket.number, transcript)
        done.append(ticket.number)
        if progress is not None:
            progress(ticket.number, transcript.text)
    return BacklogResult(tuple(done), tuple(failed))


async def work_off_backlog(store: TicketStore, engine: Engine, recordings_dir: Path, admission: Admission | None,
                           stop: asyncio.Event, idle_s: float = 2.0, nice: int = 10) -> int:
    """Transcribe pending tickets one at a time, each on a thread `nice` steps below live calls and only while
    `admission` says live recognition has room to spare, until `stop`; returns how many were transcribed."""

    def lower_priority() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)  # Linux: this thread only
        except OSError:
            pass

    done = 0
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="backlog", initializer=lower_priority) as worker:
        while not stop.is_set():
            result = None
            if admission is None or admission.spare():
                result = await loop.run_in_executor(worker, transcribe_backlog, store, engine, recordings_dir, 1)
                done += len(result.done)
            if result is None or not (result.done or result.failed):  # nothing to do, or no room: wait a while
                try:
                    await asyncio.wait_for(stop.wait(), idle_s)
                except TimeoutError:
                    pass
    return done
