import json

from prometheus_client import generate_latest
from typer.testing import CliRunner

from ivr.commands import context
from ivr.commands.queue import app
from ivr.config import AgentGroup
from ivr.queue import CallQueue, Priority
from ivr.queue.callbacks import CallbackStore
from ivr.queue.metrics import QueueMetrics, snapshot_path, write_snapshot


def make_queue():
    t = [100.0]
    q = CallQueue([AgentGroup("general")], lambda: t[0], handle_prior_s=60)
    q.add_agent("a0", "sip:op0@127.0.0.1", ("general",))
    q.enqueue("c1", "general")
    q.tick()
    q.enqueue("c2", "general", Priority.ELDERLY)
    q.enqueue("c3", "general")
    t[0] += 30
    q.abandon("c3")
    return q


def test_metrics_exposition(tmp_path):
    q = make_queue()
    store = CallbackStore(f"sqlite:///{tmp_path / 'cb.db'}")
    store.book("13812345678", "general", 2, 0, 0, ticket="T-1")
    m = QueueMetrics(q, store)
    m.refresh()
    text = generate_latest(m.registry).decode()
    assert 'ivr_queue_length{group="general",priority="elderly"} 1.0' in text
    assert "ivr_queue_oldest_wait_seconds 30.0" in text
    assert 'ivr_queue_service_level{within_seconds="15"} 0.5' in text
    assert "ivr_queue_abandonment_ratio 0.5" in text
    assert 'ivr_queue_callbacks{status="pending"} 1.0' in text
    assert 'ivr_queue_agents{state="on_call"} 1.0' in text


def test_cli_status_reads_snapshot_and_callbacks(tmp_path, monkeypatch):
    context.configure(None, {"data_dir": tmp_path}, 0)
    write_snapshot(make_queue(), snapshot_path(tmp_path))
    CallbackStore(f"sqlite:///{tmp_path / 'callbacks.db'}").book("13812345678", "general", 2, 0, 0, ticket="T-7")
    res = CliRunner().invoke(app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["callbacks"]["pending"] == 1
    assert data["queue"]["length"]["general"]["elderly"] == 1 and data["queue"]["abandoned"] == 1
    res = CliRunner().invoke(app, ["status"])
    assert "138****5678" in res.output and "13812345678" not in res.output
    assert "T-7" in res.output


def test_cli_cancel(tmp_path):
    context.configure(None, {"data_dir": tmp_path}, 0)
    cb = CallbackStore(f"sqlite:///{tmp_path / 'callbacks.db'}").book("110", "general", 2, 0, 0)
    assert CliRunner().invoke(app, ["cancel", str(cb)]).output == f"callback {cb} cancelled\n"
    res = CliRunner().invoke(app, ["cancel", str(cb)])
    assert res.exit_code == 1


def test_a_wrap_up_set_by_hand_shows_as_wrap_up_not_signed_out(tmp_path):
    from ivr.config import AgentConfig
    from ivr.queue.directory import AgentDirectory
    from ivr.queue.metrics import snapshot

    q = CallQueue([AgentGroup("general", wrap_up_s=30)], lambda: 100.0)
    op1 = AgentConfig("op1", "op1", "sip:op1@127.0.0.1", ("general",))
    d = AgentDirectory(f"sqlite:///{tmp_path / 'cb.db'}", (op1,), lambda: 100.0)
    d.populate(q)
    d.set_state("op1", "wrap-up", "op1")
    d.sync(q)
    assert d.pausing() == {"op1"} and q.agents["op1"].state.value == "signed_out"  # no calls meanwhile
    assert snapshot(q, d.pausing())["agents"]["op1"]["state"] == "wrap_up"
    m = QueueMetrics(q)
    m.refresh(d.pausing())
    text = generate_latest(m.registry).decode()
    assert 'ivr_queue_agents{state="wrap_up"} 1.0' in text and 'ivr_queue_agents{state="signed_out"} 0.0' in text
