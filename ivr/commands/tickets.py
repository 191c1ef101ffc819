"""`ivr tickets`: list, show, verify and transcribe tickets."""
from __future__ import annotations

import dataclasses
import json
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import typer
from rich.table import Table

from ivr.commands import context
from ivr.commands.listing import console, print_json
from ivr.logs import mask_number
from ivr.tickets import TicketNotFound, TicketStore
from ivr.tickets.db import Suggester
from ivr.tickets.model import Ticket, TicketFilter, TicketRow
from ivr.tickets.recovery import recover_interrupted
from ivr.triage.suggest import dispatch_suggester

log = logging.getLogger(__name__)

app = typer.Typer(help="List and show the tickets callers left.", no_args_is_help=True)


def _store(suggest: Suggester | None = None) -> TicketStore:
    return TicketStore(context.settings().database_url, suggest=suggest, tz=context.settings().tz)


@app.command("list")
def list_tickets(
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first."),
    pending: bool = typer.Option(False, "--pending", help="Only tickets waiting for transcription."),
    status: str = typer.Option(None, "--status", help="open, dispatched or closed."),
    category: str = typer.Option(None, "--category", help="Only this category (e.g. 供暖)."),
    district: str = typer.Option(None, "--district", help="Only this district (e.g. 朝阳区)."),
    urgency: str = typer.Option(None, "--urgency", help="normal, urgent or emergency."),
    since: str = typer.Option(None, "--since", help="Created on or after this day (YYYY-MM-DD)."),
    until: str = typer.Option(None, "--until", help="Created on or before this day (YYYY-MM-DD)."),
    search: str = typer.Option(None, "--search", "-s", help="Words the transcript contains."),
    full_numbers: bool = typer.Option(False, "--full-numbers", help="Show callers' numbers unmasked."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: {total, items: [ticket rows]}."),
) -> None:
    """The newest tickets, one line each."""
    try:
        flt = TicketFilter(status=status, category=category, district=district, urgency=urgency,
                           transcription="pending" if pending else None, query=search,
                           since=date.fromisoformat(since) if since else None,
                           until=date.fromisoformat(until) if until else None)
    except ValueError as exc:
        raise context.fail(f"--since/--until: {exc}") from None
    page = _store().search(flt, limit=limit)
    if as_json:
        print_json({"total": page.total, "items": [row_dict(t, full_numbers) for t in page.rows]})
        return
    if not page.rows:
        typer.echo("no tickets match" if flt != TicketFilter() else "no tickets yet")
        return
    table = Table()
    for name in ("number", "created", "caller"):
        table.add_column(name, no_wrap=True)
    for name in ("kind", "status", "category", "district", "transcription", "text"):
        table.add_column(name)
    for t in page.rows:
        table.add_row(t.number, t.created_at.astimezone(context.settings().tz).strftime("%Y-%m-%d %H:%M"),
                      t.caller if full_numbers else mask_number(t.caller), t.kind, t.status, t.category,
                      t.district, t.transcription, (t.text[:40] + "…") if len(t.text) > 40 else t.text)
    console().print(table)
    if page.total > len(page.rows):
        typer.echo(f"{len(page.rows)} of {page.total}")


def row_dict(row: TicketRow, full_numbers: bool = False) -> dict[str, object]:
    """A list row as JSON: what the console's API gives for it, the caller masked unless `full_numbers`."""
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name != "id"}
    return dict(values, caller=row.caller if full_numbers else mask_number(row.caller))


@app.command("transcribe")
def transcribe(
    pending: bool = typer.Option(False, "--pending", help="Transcribe every ticket waiting for a model."),
    interrupted: bool = typer.Option(False, "--interrupted", help="First recover tickets whose call died while "
                                     "the caller spoke (still 'recording' after --older-than minutes)."),
    older_than: int = typer.Option(60, "--older-than", help="Minutes after which a 'recording' ticket counts as "
                                   "interrupted."),
    limit: int = typer.Option(0, "--limit", "-n", help="At most this many (0: all)."),
    model: Path = typer.Option(None, "--model", help="Model folder or name of the transcription engine "
                               "([transcribe] engine; default: its configured model)."),
    suggest: bool = typer.Option(True, "--suggest/--no-suggest", help="Store a dispatch suggestion with each."),
) -> None:
    """Work off the transcription backlog once a model is available (through the transcription jobs, as
    `ivr transcribe worker` does)."""
    import threading

    from asr.errors import ModelError
    from ivr.hotline.transcription import second_pass_engine, worker_name, worker_scope
    from ivr.tickets.transcriber import JobOutcome, work_off

    if not pending:
        raise context.fail("say which tickets: --pending")
    settings = context.settings()
    store = _store(dispatch_suggester(settings.data_dir) if suggest else None)
    try:
        engine = second_pass_engine(settings, model)
    except ModelError as exc:
        raise context.fail(str(exc)) from None
    if interrupted:
        before = datetime.now(timezone.utc) - timedelta(minutes=older_than)
        for number in recover_interrupted(store, settings.recordings_dir, before):  # type: ignore[arg-type]
            typer.echo(f"{number}  recovered an interrupted recording")
    store.enqueue_pending()
    stop = threading.Event()
    done: list[JobOutcome] = []

    def progress(outcome: JobOutcome) -> None:
        done.append(outcome)
        if outcome.error:
            typer.secho(outcome.line(), fg="red", err=True)
        else:
            typer.echo(outcome.line())
        if limit and len(done) >= limit:
            stop.set()

    work_off(store, engine, settings.recordings_dir, owner=worker_name(settings),  # type: ignore[arg-type]
             lease_s=settings.transcribe_lease_s, stop=stop, until_empty=True, pending_only=True,
             progress=progress, **worker_scope(settings))
    failed = sum(1 for o in done if o.error)
    typer.echo(f"transcribed {len(done) - failed}, failed {failed}")
    if failed:
        raise typer.Exit(1)


@app.command("verify")
def verify(number: str = typer.Argument(None, help="One ticket (default: every ticket).")) -> None:
    """Check recordings against the SHA-256 stored when each call ended."""
    store = _store()
    numbers = [number] if number else [r.number for r in store.iter_rows()]
    bad = 0
    for n in numbers:
        try:
            settings = context.settings()
            check = store.verify_recording(n, settings.recordings_dir,  # type: ignore[arg-type]
                                           settings.recordings_shared_dir)
        except TicketNotFound as exc:
            raise context.fail(str(exc)) from None
        if not check.ok:
            bad += 1
            typer.echo(f"{n}  {check.problem}  {check.path}")
    typer.echo(f"{len(numbers) - bad} of {len(numbers)} recordings verified")
    if bad:
        raise typer.Exit(1)


@app.command("show")
def show(
    number: str = typer.Argument(..., help="The ticket number."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole ticket as JSON."),
) -> None:
    """One ticket with its transcript, word timings and recording."""
    try:
        ticket = _store().get(number)
    except TicketNotFound as exc:
        raise context.fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(ticket_dict(ticket), ensure_ascii=False, indent=2))
    else:
        print_ticket(ticket)


def ticket_dict(t: Ticket) -> dict[str, object]:
    return {
        "number": t.number, "created_at": t.created_at.isoformat(), "caller": t.caller, "call_id": t.call_id,
        "kind": t.kind, "status": t.status, "transcription": t.transcription.value,
        "menu_path": list(t.menu_path), "flags": list(t.flags),
        "recording": str(context.settings().recordings_dir / t.recording) if t.recording else "",  # type: ignore[operator]
        "recording_sha256": t.recording_sha256, "audio_ms": t.audio_ms,
        "transcript": t.transcript.to_dict() if t.transcript else None,
        "live_transcript": t.live_transcript.to_dict() if t.live_transcript else None,
        "category": t.category, "department": t.department, "district": t.district, "urgency": t.urgency,
        "contact_name": t.contact_name, "callback_number": t.callback_number, "address": t.address,
        "note": t.note, "dispatched_by": t.dispatched_by,
        "dispatched_at": t.dispatched_at.isoformat() if t.dispatched_at else None,
        "suggestion": t.suggestion,
    }


def print_ticket(t: Ticket) -> None:
    d = ticket_dict(t)
    typer.echo(f"ticket {t.number}  ({t.kind}, {t.transcription.value})")
    typer.echo(f"  created    {t.created_at.astimezone(context.settings().tz):%Y-%m-%d %H:%M:%S %Z}")  # hotline time
    typer.echo(f"  caller     {mask_number(t.caller)}")
    typer.echo(f"  menu path  {' > '.join(t.menu_path)}")
    if t.flags:
        typer.echo(f"  flags      {', '.join(t.flags)}")
    typer.echo(f"  recording  {d['recording']} ({t.audio_ms / 1000:.1f} s, sha256 {t.recording_sha256[:12]})")
    if t.transcript is None:
        typer.echo("  transcript (pending: no model was available)")
        return
    typer.echo(f"  transcript {t.transcript.text or '(nothing recognised)'}")
    typer.echo(f"  confidence {t.transcript.confidence:.2f}  ({t.transcript.engine} {t.transcript.model})")
    if t.transcript.extra.get("guards"):
        typer.echo(f"  left out   {t.transcript.extra['guards']}")
    for w in t.transcript.words:
        mark = " ?" if w.conf < 0.6 else ""
        typer.echo(f"    {w.start:6.2f}-{w.end:6.2f}  {w.conf:.2f}  {w.text}{mark}")
    if t.live_transcript is not None:
        typer.echo(f"  live       {t.live_transcript.text or '(nothing recognised)'}  "
                   f"({t.live_transcript.engine} {t.live_transcript.model}; replaced by the final transcript above)")
