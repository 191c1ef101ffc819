"""The second-pass engine from the settings (`[transcribe] engine`, `model`) and the node's transcription worker.

`vosk` with no model is the live model (what the backlog used before there was a second pass); `whisper` with no
model is Whisper base, joined from its installed packages into the models folder on first use. A configured
model that is missing is one error saying how to get it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from asr.engine import Engine, VoskEngine
from asr.errors import ModelNotFoundError
from asr.model_files import resolve_model, whisper_model_problem
from ivr.config import Settings
from ivr.tickets.store import TicketStore
from ivr.tickets.transcriber import lower_priority, work_off

__all__ = ["second_pass_engine", "second_pass_model", "worker_name", "worker_scope", "run_worker_thread"]

log = logging.getLogger(__name__)

WHISPER_DEFAULT = "whisper-base"


def second_pass_model(settings: Settings, override: str | Path | None = None) -> Path:
    """The model folder of the configured second-pass engine (`override`: a folder or name given on the command
    line); raises ModelNotFoundError saying how to get it."""
    models_dir = Path(settings.models_dir)  # type: ignore[arg-type]
    value = str(override or settings.transcribe_model)
    if settings.transcribe_engine == "vosk":
        return resolve_model(models_dir, flag=value or None, config=settings.vosk_model).path
    from asr.whisper_model import WHISPER_BASE, WhisperModelError, assemble

    name = value or WHISPER_DEFAULT
    path = Path(name).expanduser()
    if not path.is_dir():
        path = models_dir / name
    if path.is_dir():
        return path
    if name == WHISPER_DEFAULT:
        try:
            return assemble(WHISPER_BASE, models_dir)
        except WhisperModelError as exc:
            raise ModelNotFoundError(f"transcribe_model: {exc}") from None
    problem = whisper_model_problem(path)
    raise ModelNotFoundError(f"transcribe_model: Whisper model {name!r} not found ({problem}); install one with "
                             "`ivr models install ZIP` or `ivr models download whisper-small`")


def second_pass_engine(settings: Settings, override: str | Path | None = None) -> Engine:
    """The configured second-pass engine, loaded."""
    model = second_pass_model(settings, override)
    if settings.transcribe_engine == "whisper":
        from asr.whisper import WhisperEngine

        return WhisperEngine(model)
    return VoskEngine(model, recycle_after_s=settings.asr_recycle_after_s)


def worker_scope(settings: Settings) -> dict[str, Any]:
    """Where a worker reads recordings and whose it may take: with the centre's shared folder any node's, else
    only this node's (the others are on their own disks)."""
    shared = settings.recordings_shared_dir
    return {"shared_dir": shared, "node": None if shared is not None else settings.node_id}


def worker_name(settings: Settings) -> str:
    """Who holds a job: the node, the host and the process."""
    return f"{settings.node_id}@{socket.gethostname()}:{os.getpid()}"


async def run_worker_thread(store: TicketStore, engine: Engine, settings: Settings, stop: asyncio.Event,
                            spare: Callable[[], bool] | None, nice: int = 10, idle_s: float = 2.0) -> int:
    """`ivr serve`'s transcription worker: jobs done on a thread `nice` steps below the calls, each only while
    `spare()`, until `stop`; returns how many it did."""
    halt = threading.Event()

    def run() -> int:
        lower_priority(nice)
        return len(work_off(store, engine, settings.recordings_dir, owner=worker_name(settings),  # type: ignore[arg-type]
                            lease_s=settings.transcribe_lease_s, stop=halt, spare=spare, idle_s=idle_s,
                            **worker_scope(settings)))

    with ThreadPoolExecutor(1, thread_name_prefix="transcribe") as pool:  # its own thread: the niceness stays there
        task = asyncio.get_running_loop().run_in_executor(pool, run)
        try:
            await stop.wait()
        finally:
            halt.set()
        return await task
