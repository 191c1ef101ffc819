"""`ivr queue`: the queue's state and the callbacks waiting to be dialled."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ivr.commands import context
from ivr.logs import mask_number
from ivr.queue.callbacks import CallbackStore
from ivr.queue.metrics import read_snapshot

app = typer.Typer(help="Queue state and callbacks.", no_args_is_help=True)


def callbacks_url() -> str:
    """The callbacks database: its own SQLite file next to the tickets."""
    return f"sqlite:///{Path(context.settings().data_dir) / 'callbacks.db'}"


def snapshot_path() -> Path:
    return Path(context.settings().data_dir) / "queue-status.json"


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show queue lengths, agents, service level and callbacks."""
    store = CallbackStore(callbacks_url())
    counts = store.counts()
    snap = read_snapshot(snapshot_path())
    if as_json:
        typer.echo(json.dumps({"callbacks": counts, "queue": snap}, ensure_ascii=False))
        return
    con = Console()
    if snap is None:
        con.print("no running queue has written a status yet")
    else:
        t = Table("group", "urgent", "elderly", "normal", title="waiting")
        for g, per in snap["length"].items():
            t.add_row(g, str(per["urgent"]), str(per["elderly"]), str(per["normal"]))
        con.print(t)
        a = Table("agent", "uri", "state", "groups", title="agents")
        for aid, ag in snap["agents"].items():
            a.add_row(aid, ag["uri"], ag["state"], ",".join(ag["groups"]))
        con.print(a)
        sl = ", ".join(f"{k} s: {v:.1%}" for k, v in snap["service_level"].items())
        con.print(f"oldest wait {snap['oldest_wait_s']:.0f} s; service level {sl}; answered {snap['answered']}, "
                  f"abandoned {snap['abandoned']}; wait-estimate error mean {snap['estimate_error_mean']:.1%}, "
                  f"p90 {snap['estimate_error_p90']:.1%}")
    c = Table("id", "number", "ticket", "status", "attempts", title="callbacks outstanding")
    for cb in store.outstanding():
        c.add_row(str(cb.id), mask_number(cb.number), cb.ticket or "-", cb.status, str(cb.attempts))
    con.print(c)
    con.print("callbacks: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command("cancel")
def cancel(callback_id: int = typer.Argument(..., help="The callback's id (see `ivr queue status`).")) -> None:
    """Cancel a pending callback (e.g. the caller rang again and was served)."""
    from ivr.queue.callbacks import CallbackNotFound
    try:
        CallbackStore(callbacks_url()).cancel(callback_id)
    except CallbackNotFound as e:
        raise context.fail(str(e)) from None
    typer.echo(f"callback {callback_id} cancelled")
