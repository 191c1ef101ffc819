"""The Kamailio front door (deploy/kamailio/kamailio.cfg) in front of three real `ivr serve` nodes, SIPp callers
through it: calls spread over the nodes and hang up through it, a kill -9 node is avoided, a 503 fails over to the
next node, a draining node gets no new calls and hangs up its own through it, a flood from one address is cut by
pike while the trunk's and other callers' calls pass, the centre's call rate is held, no node up or every node
failing is a 503 with Retry-After, and a scanner never reaches a node."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import DEPLOY, FLOOD, FRONT, KAMAILIO, TEST_SETTINGS, Cluster, FrontDoor, call, held
from serveproc import free_port
from sipclient import Dialog, header, open_peer
from sippkit import answered_or_refused

pytestmark = [pytest.mark.cluster, pytest.mark.sipp, pytest.mark.slow]


@pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed")
def test_the_shipped_config_passes_kamailio_check_with_its_own_settings() -> None:
    done = subprocess.run([str(KAMAILIO), "-c", "-f", str(DEPLOY / "kamailio.cfg")], capture_output=True, text=True)
    assert done.returncode == 0 and "config file ok" in done.stdout + done.stderr, done.stderr


@contextlib.contextmanager
def front_door(home: Path, uris: list[str], up: int | None = None, **settings: str) -> Iterator[FrontDoor]:
    """Another Kamailio with the shipped cfg and these settings, in front of `uris`; stopped on leaving."""
    door = FrontDoor(home, free_port(socket.SOCK_DGRAM), {**TEST_SETTINGS, **settings})
    try:
        door.start(uris, up)
        yield door
    finally:
        door.stop()


def answered_or_refused_via(cluster: Cluster, door: FrontDoor, workdir: Path, calls: int,
                            rate: float) -> tuple[int, str, int]:
    """SIPp callers through `door`, each answered or refused 503 with Retry-After: (exit code, output, refused)."""
    log = workdir / "refused.log"
    rc, out = asyncio.run(cluster.sipp(answered_or_refused(routed=True, retry_after=True), workdir, calls=calls,
                                       rate=rate, door=door, extra=["-trace_logs", "-log_file", str(log)]))
    return rc, out, log.read_text().count("refused ") if log.exists() else 0


def test_calls_spread_over_the_three_nodes_and_hang_up_through_the_front_door(cluster: Cluster,
                                                                                 tmp_path: Path) -> None:
    before = cluster.calls()
    start = cluster.front.mark()
    rc, out = asyncio.run(cluster.sipp(call(), tmp_path, calls=30, rate=10))
    assert rc == 0, out  # every call answered, and every BYE routed back through Kamailio to its node was answered
    taken = [after - b for after, b in zip(cluster.calls(), before)]
    assert sum(taken) == 30 and min(taken) >= 9, taken  # round robin: 10 each
    assert cluster.front.count("trying the next node", since=start) == 0


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
    with front_door(tmp_path / "kamailio", [full.uri]) as door:  # when every node fails it, the caller hears 503
        rc, out, refused = answered_or_refused_via(cluster, door, tmp_path / "alone", calls=2, rate=2)
        assert door.count("every hotline node failed the call") == 2
    assert rc == 0 and refused == 2, out


def test_a_draining_node_gets_no_new_calls_and_hangs_up_its_own_through_the_front_door(cluster: Cluster,
                                                                                       tmp_path: Path) -> None:
    async def main() -> None:
        before = cluster.calls()
        holding = asyncio.create_task(cluster.sipp(held(tmp_path), tmp_path / "held", calls=1, rate=1))
        while sum(cluster.calls()) == sum(before):
            assert not holding.done(), holding.result()
            await asyncio.sleep(0.1)
        held_by = next(i for i, (b, a) in enumerate(zip(before, cluster.calls())) if a > b)
        node = cluster.nodes[held_by]  # not restarted since earlier tests, maybe: its count starts at before[held_by]
        others = [n for n in cluster.nodes if n is not node]
        node.signal(signal.SIGTERM)  # drain: the held call goes on, OPTIONS get 503
        await asyncio.to_thread(cluster.front.wait_for, rf"node {node.uri} is down")
        assert node.metrics()["ivr_sip_draining"] == 1
        taken = sum(n.calls() for n in others)
        rc, out = await cluster.sipp(call(), tmp_path / "while_draining", calls=6, rate=4, limit=1)
        assert rc == 0, out
        assert sum(n.calls() for n in others) - taken == 6
        assert node.calls() - before[held_by] == 1 and node.refused("stopping") == 0  # not even offered one
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


def test_new_calls_over_the_centre_rate_are_refused_503_with_retry_after(cluster: Cluster, tmp_path: Path) -> None:
    def refused_by_nodes() -> int:
        return sum(n.refused("global_rate") + n.refused("call_limit") for n in cluster.nodes)

    before, refused_before = sum(cluster.calls()), refused_by_nodes()
    with front_door(tmp_path / "kamailio", [n.uri for n in cluster.nodes], CALLS_PER_SECOND="5") as door:
        rc, out, refused = answered_or_refused_via(cluster, door, tmp_path / "calls", calls=40, rate=20)
    assert rc == 0, out  # each call answered, or refused with a Retry-After
    answered = sum(cluster.calls()) - before
    assert answered + refused == 40 and refused >= 15 and answered >= 5, (answered, refused)  # about 10 / 30
    assert refused_by_nodes() == refused_before  # the front door refused them, not the nodes


async def options(door: FrontDoor) -> str:
    """The trunk's keep-alive to the front door itself: its answer."""
    sip = await open_peer()
    probe = Dialog(sip, (FRONT, door.port))
    probe.send(probe.request("OPTIONS"))
    return await sip.expect(r"SIP/2.0 ")


def test_with_no_node_up_a_caller_hears_503_with_retry_after(cluster: Cluster, tmp_path: Path) -> None:
    nobody = f"sip:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    with front_door(tmp_path / "kamailio", [nobody], up=0) as door:
        rc, out, refused = answered_or_refused_via(cluster, door, tmp_path / "calls", calls=2, rate=2)
        assert door.count("no hotline node is up") == 2
        down = asyncio.run(options(door))  # a carrier probing this route is told to go elsewhere
        assert down.startswith("SIP/2.0 503 No Hotline Node Available") and header(down, "Retry-After") == "5"
    assert rc == 0 and refused == 2, out
    assert asyncio.run(options(cluster.front)).startswith("SIP/2.0 200 OK")  # while a node is up


def test_a_scanner_is_dropped_at_the_front_door_and_no_node_is_bothered(cluster: Cluster, tmp_path: Path) -> None:
    before = cluster.calls()
    start = cluster.front.mark()
    scanner = FLOOD.replace("User-Agent: SIPp test caller", "User-Agent: friendly-scanner")
    assert scanner != FLOOD
    rc, out = asyncio.run(cluster.sipp(scanner, tmp_path, calls=5, rate=5, local_ip="127.0.0.77",
                                       extra=["-trace_logs", "-log_file", str(tmp_path / "answered.log")]))
    assert not (tmp_path / "answered.log").exists() or "answered " not in (tmp_path / "answered.log").read_text()
    assert cluster.calls() == before  # no node saw it (they trust the front door and leave scanners to it)
    assert cluster.front.count(r"did not answer|is down|failed the call", since=start) == 0
