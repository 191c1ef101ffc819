import json

from prometheus_client import generate_latest
from typer.testing import CliRunner

from ivr.commands import context
from ivr.commands.queue import app, snapshot_path
from ivr.queue import AgentGroup, CallQueue, Priority
from ivr.queue.callbacks import CallbackStore
from ivr.queue.metrics import QueueMetrics, write_snapshot


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
    write_snapshot(make_queue(), snapshot_path())
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
