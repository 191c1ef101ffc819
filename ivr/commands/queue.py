"""`ivr queue`: the queue's state, the callbacks waiting to be dialled, and the operators' availability."""
from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from ivr.commands import context
from ivr.commands.cluster import centre_view
from ivr.commands.listing import console, print_json
from ivr.hotline.recognition import read_status, status_path
from ivr.logs import mask_number
from ivr.queue.callbacks import CallbackStore, queue_url
from ivr.queue.directory import directory_for
from ivr.queue.metrics import read_snapshot, snapshot_path
from ivr.queue.model import AgentState, Priority, QueueError

app = typer.Typer(help="Queue state and callbacks.", no_args_is_help=True)


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show queue lengths, agents, service level and callbacks; with a centre (queue_database_url), every node's
    callers in the centre's queue, every operator as the centre sees them, and the nodes."""
    store = CallbackStore(queue_url(context.settings()))
    counts = store.counts()
    snap = read_snapshot(snapshot_path(context.settings().data_dir))
    recognition = read_status(status_path(context.settings().data_dir))
    centre = centre_view() if context.settings().queue_database_url else None
    if as_json:
        print_json({"callbacks": counts, "queue": snap, "recognition": recognition}
                   | ({"centre": centre} if centre is not None else {}))
        return
    con = console()
    if centre is not None:
        _print_centre(centre)
    elif snap is None:
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
    if recognition is not None:
        r = recognition
        con.print(f"live recognition: {r['steps']} steps held of {r['limit']:.0f}, {r['streams']} utterances decoding; "
                  f"lag p95 {r['lag_p95_s']:.2f} s (oldest frame {r['lag_oldest_p95_s']:.2f} s); admitted "
                  f"{r['admitted']}, by keys for want of decoders {r['shed']} ({r['shed_priority']} priority); "
                  f"longest wait after speaking {r['reply_max_s']:.2f} s ({r['replies_over_1s']} over 1 s)")


def _print_centre(view: dict[str, Any]) -> None:
    con = console()
    q = Table("place", "call", "node", "group", "priority", "waited", title="the centre's queue")
    for place, c in enumerate((c for c in view["queue"] if c["status"] == "waiting"), 1):
        q.add_row(str(place), c["call_id"], c["node"] or "callback", c["group"], Priority(c["priority"]).name.lower(),
                  f"{c['waited_s']:.0f} s")
    con.print(q)
    a = Table("agent", "state", "node", "call", "calls", title="operators (centre)")
    for aid, ag in view["agents"].items():
        a.add_row(aid, ag["state"], ag["node"] or "-", ag["call_id"] or "-", str(ag["calls"]))
    con.print(a)
    n = Table("node", "state", "heartbeat", "calls", "waiting", "lost callers", title="nodes")
    for node in view["nodes"]:
        n.add_row(node["node"], node["state"], f"{node['heartbeat_age_s']:.1f} s ago", str(node["calls"]),
                  str(node["queued"]), str(node["lost_callers"]))
    con.print(n)


@app.command("cancel")
def cancel(callback_id: int = typer.Argument(..., help="The callback's id (see `ivr queue status`).")) -> None:
    """Cancel a pending callback (e.g. the caller rang again and was served)."""
    from ivr.queue.callbacks import CallbackNotFound
    try:
        CallbackStore(queue_url(context.settings())).cancel(callback_id)
    except CallbackNotFound as e:
        raise context.fail(str(e)) from None
    typer.echo(f"callback {callback_id} cancelled")


def _when(ts: float) -> str:
    """A moment in the hotline's local time (the `timezone` setting)."""
    return datetime.fromtimestamp(ts, context.settings().tz).strftime("%m-%d %H:%M:%S")


@app.command("agents")
def agents(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
           history: bool = typer.Option(False, "--history", help="Show the audited changes instead.")) -> None:
    """List the operators: SIP URI, groups, state and since when (what the running server sees)."""
    d = directory_for(context.settings())
    if history:
        entries = d.history()
        if as_json:
            print_json([dict(e.__dict__, before=e.before.value, after=e.after.value) for e in entries])
            return
        h = Table("at", "agent", "by", "before", "after", title="operator state changes")
        for e in entries:
            h.add_row(_when(e.at), e.agent_id, e.user, e.before.value, e.after.value)
        console().print(h)
        return
    rows = d.statuses()
    if as_json:
        print_json([dict(s.__dict__, state=s.state.value) for s in rows])
        return
    if not rows:
        typer.echo("no operators configured: add [[queue.agents]] to the settings file")
        return
    t = Table("id", "name", title="operators")
    for column in ("uri", "groups"):  # shown whole, folded over lines in a narrow terminal
        t.add_column(column, overflow="fold")
    for column in ("state", "since", "by"):
        t.add_column(column, no_wrap=True)
    for s in rows:
        t.add_row(s.agent_id, s.name, s.uri, ",".join(s.groups), s.state.value, _when(s.since), s.changed_by)
    console().print(t)


@app.command("agent")
def agent(agent_id: str = typer.Argument(..., help="The operator's id (see `ivr queue agents`)."),
          state: str = typer.Argument(..., help="available, signed-out or wrap-up."),
          by: str = typer.Option("", "--by", help="Who makes the change (default: your login name).")) -> None:
    """Sign an operator in (available) or out, or give them a wrap-up pause; a running server applies it
    within a second."""
    user = by or f"cli:{_login()}"
    try:
        change = directory_for(context.settings()).set_state(agent_id, state, user)
    except QueueError as e:
        raise context.fail(str(e)) from None
    line = f"{agent_id}: {change.before.value} -> {change.after.value} (by {user})"
    if change.before == AgentState.ON_CALL and change.after == AgentState.SIGNED_OUT:
        line += "; applies when the current call ends"
    typer.echo(line)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
