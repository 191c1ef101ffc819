from prometheus_client import CollectorRegistry, generate_latest

from ivr.sip.endpoint import SipServerConfig
from ivr.sip.metrics import SipCollector
from ivr.sip.uas import SipServer


async def _idle(channel: object) -> None:
    return None


def test_calls_taken_draining_and_refusals_are_exposed() -> None:
    server = SipServer(SipServerConfig(), _idle)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    SipCollector(lambda: server, registry)
    server.counters["calls"] = 7
    server.refused["stopping"] = 2
    text = generate_latest(registry).decode()
    assert "ivr_sip_calls_total 7.0" in text and "ivr_sip_draining 0.0" in text
    assert 'ivr_sip_invites_refused_total{reason="stopping"} 2.0' in text
    server.draining = True
    assert "ivr_sip_draining 1.0" in generate_latest(registry).decode()


def test_nothing_about_the_server_before_it_is_up() -> None:
    registry = CollectorRegistry()
    SipCollector(lambda: None, registry)
    assert "ivr_sip_calls" not in generate_latest(registry).decode()
