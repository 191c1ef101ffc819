"""`ivr tickets`: list and show tickets."""
from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from ivr.commands import context
from ivr.logs import mask_number
from ivr.tickets import TicketNotFound, TicketStore
from ivr.tickets.model import Ticket

app = typer.Typer(help="List and show the tickets callers left.", no_args_is_help=True)


def _store() -> TicketStore:
    return TicketStore(context.settings().database_url)


@app.command("list")
def list_tickets(
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first."),
    pending: bool = typer.Option(False, "--pending", help="Only tickets waiting for transcription."),
    full_numbers: bool = typer.Option(False, "--full-numbers", help="Show callers' numbers unmasked."),
) -> None:
    """The newest tickets, one line each."""
    tickets = _store().list(limit=limit, transcription="pending" if pending else None)
    if not tickets:
        typer.echo("no tickets yet")
        return
    table = Table("number", "created", "caller", "kind", "transcription", "text")
    for t in tickets:
        table.add_row(t.number, t.created_at.strftime("%Y-%m-%d %H:%M"),
                      t.caller if full_numbers else mask_number(t.caller), t.kind, t.transcription.value,
                      (t.text[:40] + "…") if len(t.text) > 40 else t.text)
    Console().print(table)


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
    }


def print_ticket(t: Ticket) -> None:
    d = ticket_dict(t)
    typer.echo(f"ticket {t.number}  ({t.kind}, {t.transcription.value})")
    typer.echo(f"  created    {d['created_at']}")
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
    for w in t.transcript.words:
        mark = " ?" if w.conf < 0.6 else ""
        typer.echo(f"    {w.start:6.2f}-{w.end:6.2f}  {w.conf:.2f}  {w.text}{mark}")
