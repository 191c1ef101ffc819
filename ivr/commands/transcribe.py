"""`ivr transcribe`: the post-call transcription worker as a process of its own."""
from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from ivr.commands import context
from ivr.tickets import TicketStore
from ivr.triage.suggest import dispatch_suggester

log = logging.getLogger(__name__)

app = typer.Typer(help="Transcribe recordings after their calls (the second pass).", no_args_is_help=True)


@app.command("worker")
def worker(
    ctx: typer.Context,
    model: Path = typer.Option(None, "--model", help="Model folder or name ([transcribe] model)."),
    once: bool = typer.Option(False, "--once", help="Stop when no job is left instead of waiting for more."),
    nice: int = typer.Option(10, "--nice", help="Run this many steps below normal priority."),
    idle: float = typer.Option(2.0, "--idle", help="Seconds between looks at an empty job list."),
) -> None:
    """Take transcription jobs from the ticket store and commit each result once, until SIGTERM or Ctrl-C.

    Several workers, on this machine or others sharing the ticket database, may run at once; a job whose worker
    died is taken up again once its lease ([transcribe] lease_s) runs out. Without recordings_shared_dir a worker
    takes only the recordings of its node_id (the ones on this disk)."""
    from asr.errors import ModelError
    from ivr.hotline.transcription import second_pass_engine, worker_name, worker_scope
    from ivr.tickets.transcriber import work_off

    settings = context.settings_of(ctx)
    try:
        os.nice(nice)
    except OSError:
        pass
    try:
        engine = second_pass_engine(settings, model)
    except ModelError as exc:
        raise context.fail(str(exc)) from None
    store = TicketStore(settings.database_url, suggest=dispatch_suggester(settings.data_dir), tz=settings.tz)
    queued = store.enqueue_pending()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    name = worker_name(settings)
    typer.echo(f"transcription worker {name}: {engine.name} {engine.model_name}; {queued} waiting ticket(s) queued",
               err=True)
    outcomes = work_off(store, engine, settings.recordings_dir, owner=name,  # type: ignore[arg-type]
                        lease_s=settings.transcribe_lease_s, stop=stop, idle_s=idle, until_empty=once,
                        **worker_scope(settings),
                        progress=lambda o: typer.echo(o.line()))
    typer.echo(f"transcribed {sum(1 for o in outcomes if not o.error)}, failed {sum(1 for o in outcomes if o.error)}",
               err=True)
