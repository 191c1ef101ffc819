"""The Kamailio front door (deploy/kamailio/kamailio.cfg) in front of three real `ivr serve` nodes, SIPp callers
through it: calls spread over the nodes, a killed node is avoided, a 5xx fails over to the next node, a draining
node gets no new calls, a flood from one address is cut by pike while the others' calls pass."""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from clusterkit import FLOOD, Cluster, call, held

pytestmark = [pytest.mark.cluster, pytest.mark.sipp, pytest.mark.slow]


def test_calls_spread_over_the_three_nodes_and_hang_up_through_the_front_door(cluster: Cluster,
                                                                                 tmp_path: Path) -> None:
    before = cluster.calls()
    rc, out = asyncio.run(cluster.sipp(call(), tmp_path, calls=30, rate=10))
    assert rc == 0, out  # every call answered, and every BYE routed back through Kamailio to its node was answered
    taken = [after - b for after, b in zip(cluster.calls(), before)]
    assert sum(taken) == 30 and min(taken) >= 9, taken  # round robin: 10 each
    assert cluster.front.count("trying the next node") == 0


def test_a_killed_node_gets_no_new_calls_once_the_front_door_finds_it_dead(cluster: Cluster, tmp_path: Path) -> None:
    dead = cluster.nodes[1]
    survivors = [n for n in cluster.nodes if n is not dead]
    before = sum(n.calls() for n in survivors)
    start = cluster.front.mark()
    dead.kill()  # kill -9: no drain, no 503, just silence
    # Callers one after the other from the moment it died: every call is answered; the front door tries the dead
    # node at most once (it waits NODE_TIMEOUT_MS, marks it down and goes on to the next node), unless its probe
    # found it dead first.
    rc, out = asyncio.run(cluster.sipp(call(), tmp_path / "at_once", calls=12, rate=4, limit=1))
    assert rc == 0, out
    assert sum(n.calls() for n in survivors) - before == 12
    assert cluster.front.count(rf"node {dead.uri} did not answer", since=start) <= 1
    cluster.front.wait_for(rf"node {dead.uri} is down")
    # Once it is down, new calls go to the others only: not one more try of the dead node.
    probed = cluster.front.mark()
    rc, out = asyncio.run(cluster.sipp(call(), tmp_path / "after", calls=9, rate=10, limit=3))
    assert rc == 0, out
    assert sum(n.calls() for n in survivors) - before == 21
    assert cluster.front.count(rf"node {dead.uri}", since=probed) == 0


def test_a_node_answering_503_passes_the_call_to_the_next_node(cluster: Cluster, tmp_path: Path) -> None:
    full = cluster.nodes[2]
    cluster.restart(full, {"IVR_MAX_CALLS": "0"})  # a full node: every INVITE gets 503, yet it answers OPTIONS 200
    before = cluster.calls()
    start = cluster.front.mark()
    rc, out = asyncio.run(cluster.sipp(call(), tmp_path, calls=12, rate=4, limit=1))
    assert rc == 0, out  # no caller heard the 503
    taken = [after - b for after, b in zip(cluster.calls(), before)]
    assert taken[2] == 0 and sum(taken) == 12, taken
    refused = full.refused("call_limit")
    assert refused >= 2  # it was tried in its turn, again and again
    assert cluster.front.count(rf"node {full.uri} failed the call \(503\)", since=start) == refused


def test_a_draining_node_gets_no_new_calls_and_hangs_up_its_own_through_the_front_door(cluster: Cluster,
                                                                                       tmp_path: Path) -> None:
    async def main() -> None:
        before = cluster.calls()
        holding = asyncio.create_task(cluster.sipp(held(tmp_path), tmp_path / "held", calls=1, rate=1))
        while sum(cluster.calls()) == sum(before):
            assert not holding.done(), holding.result()
            await asyncio.sleep(0.1)
        node = next(n for n, b, a in zip(cluster.nodes, before, cluster.calls()) if a > b)
        others = [n for n in cluster.nodes if n is not node]
        node.signal(signal.SIGTERM)  # drain: the held call goes on, OPTIONS get 503
        await asyncio.to_thread(cluster.front.wait_for, rf"node {node.uri} is down")
        assert node.metrics()["ivr_sip_draining"] == 1
        taken = sum(n.calls() for n in others)
        rc, out = await cluster.sipp(call(), tmp_path / "while_draining", calls=6, rate=4, limit=1)
        assert rc == 0, out
        assert sum(n.calls() for n in others) - taken == 6
        assert node.calls() == 1 and node.refused("stopping") == 0  # not even offered one
        assert not holding.done()
        node.signal(signal.SIGTERM)  # again: hang up now; its BYE goes to the caller along the Record-Route
        rc, out = await holding
        assert rc == 0, out
        assert await asyncio.to_thread(node.wait_exit) == 0

    asyncio.run(main())


FLOODER, CALLER = "127.0.0.66", "127.0.0.21"


def test_a_flood_from_one_address_is_cut_by_pike_while_the_trunk_and_other_callers_get_through(
        cluster: Cluster, tmp_path: Path) -> None:
    async def main() -> tuple[tuple[int, str], tuple[int, str], tuple[int, str]]:
        flood = asyncio.create_task(cluster.sipp(FLOOD, tmp_path / "flood", calls=600, rate=100, local_ip=FLOODER,
                                                 extra=["-trace_logs", "-log_file", str(tmp_path / "answered.log")]))
        await asyncio.sleep(1)  # the flood is on
        trunk = cluster.sipp(call(), tmp_path / "trunk", calls=20, rate=5)
        caller = cluster.sipp(call(), tmp_path / "caller", calls=4, rate=1, limit=1, local_ip=CALLER)
        return await asyncio.gather(flood, trunk, caller)

    before = sum(cluster.calls())
    start = cluster.front.mark()
    (_, flood_out), (rc_trunk, trunk_out), (rc_caller, caller_out) = asyncio.run(main())
    assert rc_trunk == 0, trunk_out  # the carrier's trunk is trusted: no limit per address
    assert rc_caller == 0, caller_out  # another address calling at a caller's pace is not blocked
    answered = (tmp_path / "answered.log").read_text().count("answered ")
    assert 0 < answered < 60, flood_out  # the first of 600 INVITEs got through, then pike cut the address off
    assert sum(cluster.calls()) - before == 20 + 4 + answered  # as the nodes counted them
    assert cluster.front.count(rf"PIKE - BLOCKing ip {FLOODER}\b", since=start) >= 1
    assert cluster.front.count(r"PIKE - BLOCKing ip 127\.0\.0\.2[01]\b", since=start) == 0
