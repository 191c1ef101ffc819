"""Real `ivr serve` nodes sharing the centre's queue and tickets in a real PostgreSQL, SIPp callers, operator and
citizen: a node killed with kill -9 while it bridges a callback and has callers waiting loses its callers from the
centre's queue (counted), its operator is free again for the other node's caller, and the callback is dialled again
by the other node once its lease has run out; PostgreSQL restarted under load; a recording made on one node plays
from another node's console."""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pgkit import PgCluster, fresh_database
from clusterkit import FRONT, KAMAILIO, TRUNK, Cluster
from queuekit import ELDERLY, GENERAL, all_day_flow, caller, suggestion_caller
from serveproc import Served, free_port, launch
from sippkit import (PCMU_EVENTS, SIPP, answer_ok, caller_bye, invite_answered, pause, recv, scenario, sipp_counts,
                     sipp_media_port)

from asr.audio import read_wav
from ivr.config import Settings
from ivr.console.users import UserStore
from ivr.queue.callbacks import CallbackStore
from ivr.tickets import TicketStore

pytestmark = [pytest.mark.cluster, pytest.mark.sipp, pytest.mark.slow,
              pytest.mark.skipif(SIPP is None or shutil.which("sipp") is None, reason="sipp is not installed")]

REPO = Path(__file__).resolve().parents[2]
SIPP_DIR = REPO / "tests" / "ivr" / "queue" / "sipp"
PASSWORD = "correct horse 12345"
LEASE_S = 8
LAPSE_S = 3


@dataclass
class Phones:
    """SIPp processes started by a test (operators, citizens, callers), killed at its end."""
    workdir: Path
    procs: list[subprocess.Popen[bytes]]

    def uas(self, name: str, xml: Path, calls: int, *args: str) -> int:
        port = free_port(socket.SOCK_DGRAM)
        self._start(name, ["-sf", str(xml), "-p", str(port), "-m", str(calls), "-mp", str(sipp_media_port()),
                           *args])
        return port

    def call(self, name: str, xml: str, node_port: int) -> subprocess.Popen[bytes]:
        (self.workdir / f"{name}.xml").write_text(xml)
        port = free_port(socket.SOCK_DGRAM)
        return self._start(name, ["-sf", str(self.workdir / f"{name}.xml"), "-p", str(port), "-m", "1",
                                  "-mp", str(sipp_media_port()), f"127.0.0.1:{node_port}"])

    def _start(self, name: str, args: list[str], local_ip: str = "127.0.0.1") -> subprocess.Popen[bytes]:
        assert SIPP is not None
        proc = subprocess.Popen([SIPP, "-i", local_ip, "-nostdin", *args], cwd=self.workdir,
                                stdout=subprocess.DEVNULL, stderr=(self.workdir / f"{name}.err").open("wb"))
        self.procs.append(proc)
        return proc


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Phones]:
    p = Phones(tmp_path, [])
    yield p
    for proc in p.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_log(node: Served, pattern: str, count: int = 1, limit_s: float = 180) -> None:
    """Until `count` lines of the node's log match `pattern` (the limit only stops a hung test)."""
    assert node.log is not None
    deadline = time.monotonic() + limit_s
    while len(re.findall(pattern, node.log.read_text(errors="replace"), re.M)) < count:
        assert node.proc.poll() is None and time.monotonic() < deadline, (
            f"no {count} lines like {pattern!r}:\n{node.log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


def centre_on_console(node: Served, data: Path, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The node's console's live view (signed in as an operator) once `done(view)` (the limit stops a hung test)."""
    UserStore(TicketStore(f"sqlite:///{data / 'ivr.db'}").engine).add("zhang", PASSWORD, "operator")
    with httpx.Client(base_url=node.url) as console:
        assert console.post("/api/session", json={"username": "zhang", "password": PASSWORD}).status_code == 200
        deadline = time.monotonic() + 60
        while not done(live := console.get("/api/live").json()):
            assert time.monotonic() < deadline, live
            time.sleep(0.2)
    return live


def rows(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_a_killed_node_loses_its_callers_frees_its_operator_and_its_callback_is_dialled_again(
        pg: PgCluster, phones: Phones, tmp_path: Path, prompt_cache: Path) -> None:
    url = fresh_database(pg)
    operator = phones.uas("op1", SIPP_DIR / "answer_hold_bye.xml", 10, "-d", "600000")  # talks until hung up
    citizen = phones.uas("citizen", SIPP_DIR / "citizen_presses_1.xml", 2)
    now = time.time()
    cb = CallbackStore(url).book("13900000009", "general", 2, entered=now, rank=now, ticket="T-1")
    config = tmp_path / "ivr.toml"
    config.write_text(f'[queue]\ndatabase_url = "{url}"\ntrunk = "127.0.0.1:{citizen}"\n'
                      f'callback_hours = "00:00-24:00"\nnode_timeout_s = {LAPSE_S}\ncallback_lease_s = {LEASE_S}\n'
                      f'[[queue.agents]]\nid = "op1"\nuri = "sip:op1@127.0.0.1:{operator}"\ngroups = ["general"]\n',
                      encoding="utf-8")
    nodes: dict[str, Served] = {}
    try:
        for i, name in enumerate(("B", "A")):  # B first: it dials the callback, bridged to op1
            nodes[name] = launch(tmp_path / name, prompt_cache, env={
                "IVR_CONFIG": str(config), "IVR_NODE_ID": name, "IVR_FLOW": str(all_day_flow(tmp_path)),
                "IVR_RTP_PORT_MIN": str(40000 + 1000 * i), "IVR_RTP_PORT_MAX": str(40998 + 1000 * i),
                "IVR_LOG_LEVEL": "INFO"}, log=tmp_path / f"{name}.log")
            if name == "B":
                wait_log(nodes["B"], rf"callback {cb}: citizen put through to op1")
        a, b = nodes["A"], nodes["B"]
        # op1 is on B's callback: two callers of B and one of A wait in the centre's queue
        for n in range(2):
            phones.call(f"b{n}", caller(f"1390000010{n}", *GENERAL), b.sip_port)
        wait_log(b, r"queue_announce position=\d", 2)
        # A's caller talks to whoever answers, then hangs up
        a_caller = phones.call("a0", scenario("caller of A", invite_answered(), *GENERAL, pause(30_000),
                                              caller_bye(2)), a.sip_port)
        wait_log(a, r"queue_announce position=3")  # the centre's queue: behind B's two
        assert rows(url, "SELECT node, count(*) FROM centre_calls WHERE NOT callback GROUP BY node ORDER BY node") \
            == [("A", 1), ("B", 2)]
        live = centre_on_console(a, tmp_path / "A", lambda s: sorted(c["line"] for c in s["calls"]) == ["A", "B", "B"]
                                 and all(e["caller"].startswith("1") for e in s["queue"]))
        # A's console: every node's calls, the centre's queue with every caller's number masked (B's from B's beat)
        callers = [e["caller"] for e in live["queue"]]  # (B's two in the order they reached the queue)
        assert sorted(callers[:2]) == ["139****0100", "139****0101"] and callers[2:] == ["138****8000"], callers
        b.proc.send_signal(signal.SIGKILL)  # kill -9: no drain, no goodbye
        b.proc.wait()
        # A gives B up once its heartbeat lapses: B's callers leave the queue, op1 is free and takes A's caller
        wait_log(a, r"node B stopped beating: 2 of its callers left the queue")
        assert rows(url, "SELECT state, lost_callers FROM centre_nodes WHERE node = 'B'") == [("lost", 2)]
        wait_log(a, r"call \S+: queue_connect agent=op1")
        # the callback B was bridging is taken back when its lease runs out, and A dials it
        wait_log(a, rf"callback {cb}: its dialler stopped holding it \(lease expired\)")
        wait_log(a, rf"callback {cb}: citizen put through to op1")  # after A's caller hung up and op1 wrapped up
        assert a_caller.wait(timeout=120) == 0
    finally:
        for node in nodes.values():
            if node.proc.poll() is None:
                node.stop()
    after = CallbackStore(url).get(cb)
    assert (after.status, after.attempts, after.last_result) == ("done", 1, "answered")  # one attempt counted
    assert rows(url, "SELECT count(*) FROM centre_calls") == [(0,)]


def test_postgresql_restarted_under_load_calls_go_on_the_node_reconnects_nothing_booked_is_lost(
        phones: Phones, tmp_path: Path, prompt_cache: Path) -> None:
    server = PgCluster()  # its own server: the session's is not restarted under other tests
    try:
        url = fresh_database(server)
        operator = phones.uas("op1", SIPP_DIR / "answer_hold_bye.xml", 2, "-d", "15000")  # talks 15 s, hangs up
        store = CallbackStore(url)
        now = time.time()
        booked = [store.book(f"1390000030{i}", "elderly", 1, entered=now + i, rank=now + i) for i in range(3)]
        config = tmp_path / "ivr.toml"  # nobody serves the elderly desk here: the callbacks just keep their places
        config.write_text(f'[queue]\ndatabase_url = "{url}"\ncallback_hours = "00:00-24:00"\n'
                          f'[[queue.agents]]\nid = "op1"\nuri = "sip:op1@127.0.0.1:{operator}"\n'
                          'groups = ["general"]\n', encoding="utf-8")
        node = launch(tmp_path / "A", prompt_cache, env={
            "IVR_CONFIG": str(config), "IVR_NODE_ID": "A", "IVR_FLOW": str(all_day_flow(tmp_path)),
            "IVR_RTP_PORT_MIN": "42000", "IVR_RTP_PORT_MAX": "42998", "IVR_LOG_LEVEL": "INFO"},
            log=tmp_path / "A.log")
        try:
            talking = phones.call("c1", caller("13900000401", *GENERAL), node.sip_port)
            wait_log(node, r"queue_connect agent=op1")
            waiting = phones.call("c2", caller("13900000402", *GENERAL), node.sip_port)
            wait_log(node, r"queue_announce position=1")
            server.shut_down()  # c1 talks to op1, c2 waits: both go on
            wait_log(node, r"the queue database cannot be reached")
            server.start()
            wait_log(node, r"the queue database is back")
            assert talking.wait(timeout=120) == 0  # the call in progress went on to its end
            wait_log(node, r"queue_connect agent=op1", 2)  # op1's wrap-up written after the restart: c2's turn
            assert waiting.wait(timeout=120) == 0
        finally:
            node.stop()
        assert node.proc.returncode == 0
        assert [cb.id for cb in CallbackStore(url).outstanding()] == booked  # nothing booked is lost
        assert "Traceback" not in node.log.read_text() if node.log else False
    finally:
        server.stop()


def test_a_recording_made_on_one_node_plays_from_another_nodes_console(
        pg: PgCluster, phones: Phones, tmp_path: Path, prompt_cache: Path, settings: Settings) -> None:
    url = fresh_database(pg)  # the centre's ticket store
    shared = tmp_path / "shared-recordings"  # what a centre mounts on every node
    env = {"IVR_DATABASE_URL": url, "IVR_RECORDINGS_SHARED_DIR": str(shared), "IVR_LOG_LEVEL": "INFO"}
    a = launch(tmp_path / "A", prompt_cache, env={**env, "IVR_NODE_ID": "A", "IVR_RTP_PORT_MIN": "42000",
                                                   "IVR_RTP_PORT_MAX": "42998"}, log=tmp_path / "A.log")
    try:
        b = launch(tmp_path / "B", prompt_cache, env={**env, "IVR_NODE_ID": "B", "IVR_RTP_PORT_MIN": "43000",
                                                       "IVR_RTP_PORT_MAX": "43998"}, log=tmp_path / "B.log")
        try:
            speech = read_wav(REPO / "audio_fixtures" / "zh" / "q01.wav")
            xml = suggestion_caller(settings, speech, tmp_path / "speech.pcap")
            assert phones.call("c1", xml, a.sip_port).wait(timeout=120) == 0
            store = TicketStore(url)
            deadline = time.monotonic() + 120  # only stops a hung test
            while not store.list():  # the ticket is saved as the call ends
                assert time.monotonic() < deadline, a.log.read_text() if a.log else ""
                time.sleep(0.1)
            (ticket,) = store.list()
            while not (shared / ticket.recording).is_file():
                assert time.monotonic() < deadline, a.log.read_text() if a.log else ""
                time.sleep(0.1)
            assert ticket.node == "A" and ticket.recording_sha256
            assert not (tmp_path / "B" / "recordings" / ticket.recording).exists()
            UserStore(store.engine).add("zhang", PASSWORD, "operator")
            with httpx.Client(base_url=b.url) as console:  # node B's console
                assert console.post("/api/session", json={"username": "zhang",
                                                          "password": PASSWORD}).status_code == 200
                audio = console.get(f"/api/tickets/{ticket.number}/audio")
            assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
            assert hashlib.sha256(audio.content).hexdigest() == ticket.recording_sha256
            store.engine.dispose()
        finally:
            b.stop()
    finally:
        a.stop()


@pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed")
def test_through_the_front_door_callers_are_served_in_the_centres_order_whatever_node_took_them(
        pg: PgCluster, phones: Phones, tmp_path: Path, prompt_cache: Path) -> None:
    url = fresh_database(pg)
    operator = phones.uas("op1", SIPP_DIR / "answer_hold_bye.xml", 10, "-d", "8000")  # talks 8 s, hangs up
    config = tmp_path / "ivr.toml"
    config.write_text(f'[queue]\ndatabase_url = "{url}"\n[[queue.agents]]\nid = "op1"\n'
                      f'uri = "sip:op1@127.0.0.1:{operator}"\ngroups = ["general", "elderly"]\n', encoding="utf-8")
    cluster = Cluster.start(tmp_path / "cluster", prompt_cache, node_env={
        "IVR_CONFIG": str(config), "IVR_FLOW": str(all_day_flow(tmp_path)), "IVR_LOG_LEVEL": "INFO",
        "IVR_RTP_TIMEOUT_S": "120"})  # callers who send no audio while they wait
    try:
        callers = {"first": GENERAL, "b-early": GENERAL, "a-later": GENERAL, "c-elderly": ELDERLY}
        procs = {}
        for n, (name, keys) in enumerate(callers.items()):  # round robin: one node after the other
            xml = scenario(name, invite_answered(PCMU_EVENTS, routed=True), *keys, recv("BYE"), answer_ok())
            (tmp_path / f"{name}.xml").write_text(xml.replace("13800138000", f"1390000060{n}"))
            procs[name] = phones._start(name, ["-sf", str(tmp_path / f"{name}.xml"), "-p",
                                               str(free_port(socket.SOCK_DGRAM)), "-m", "1",
                                               f"{FRONT}:{cluster.front.port}"], local_ip=TRUNK)
            time.sleep(1.5)  # the first is with op1; the others queue in this order
        for name, proc in procs.items():
            assert proc.wait(timeout=180) == 0, name  # each was put through, talked, and hung up by the operator
        served: list[tuple[str, str, str]] = []  # (time, caller, node)
        for node in cluster.nodes:
            text = node.served.log.read_text() if node.served and node.served.log else ""
            who = {m.group(1): m.group(2) for m in re.finditer(r"call (\S+) from \d+\*+060(\d): flow", text)}
            served += [(m.group(1), list(callers)[int(who[m.group(2)])], node.name) for m in
                       re.finditer(r"^(\S+) INFO .*call (\S+): queue_connect agent=op1", text, re.M)]
        order = [name for _, name, _ in sorted(served)]
        assert order == ["first", "c-elderly", "b-early", "a-later"], served
        assert len({node for _, _, node in served}) == 3  # the callers were on three nodes
    finally:
        cluster.stop()


def test_a_queue_database_held_up_delays_the_queue_but_never_the_media_clock(
        pg: PgCluster, phones: Phones, tmp_path: Path, prompt_cache: Path) -> None:
    if os.getloadavg()[0] > 3 * (os.cpu_count() or 1):
        pytest.skip(f"the machine is overloaded (load average {os.getloadavg()[0]:.1f}): its media clock stalls "
                    "whatever the database does")
    url = fresh_database(pg)
    operator = phones.uas("op1", SIPP_DIR / "answer_hold_bye.xml", 2, "-d", "600000")  # talks until hung up
    config = tmp_path / "ivr.toml"
    config.write_text(f'[queue]\ndatabase_url = "{url}"\n[[queue.agents]]\nid = "op1"\n'
                      f'uri = "sip:op1@127.0.0.1:{operator}"\ngroups = ["general"]\n', encoding="utf-8")
    node = launch(tmp_path / "A", prompt_cache, env={
        "IVR_CONFIG": str(config), "IVR_NODE_ID": "A", "IVR_FLOW": str(all_day_flow(tmp_path)),
        "IVR_RTP_PORT_MIN": "44000", "IVR_RTP_PORT_MAX": "44998", "IVR_RTP_TIMEOUT_S": "120",
        "IVR_LOG_LEVEL": "INFO"}, log=tmp_path / "A.log", nice=-5)  # as a PBX runs its media
    engine = sa.create_engine(url)
    try:
        phones.call("c1", caller("13900000501", *GENERAL), node.sip_port)  # bridged to op1
        wait_log(node, r"queue_connect agent=op1")
        phones.call("c2", caller("13900000502", *GENERAL), node.sip_port)  # waits, hearing hold music
        wait_log(node, r"queue_announce position=1")
        start = node.metrics()  # a window as long as the lock's, without it: how steady the clock is here
        while (before := node.metrics())["ivr_media_clock_ticks_total"] < start["ivr_media_clock_ticks_total"] + 250:
            time.sleep(0.1)
        steady = before["ivr_media_clock_stalls_total"] == start["ivr_media_clock_stalls_total"]
        with engine.begin() as held:  # the centre's tables locked by someone else: every query of the node waits
            held.execute(sa.text("LOCK TABLE centre_nodes, centre_calls, centre_agents, centre_tallies "
                                 "IN ACCESS EXCLUSIVE MODE"))
            beat = held.execute(sa.text("SELECT heartbeat FROM centre_nodes WHERE node = 'A'")).scalar()
            ticks, deadline = before["ivr_media_clock_ticks_total"], time.monotonic() + 60  # (a blocked loop)
            while node.metrics()["ivr_media_clock_ticks_total"] < ticks + 250 and time.monotonic() < deadline:
                time.sleep(0.1)  # 5 s of media on each call
            blocked = held.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND datname = current_database()")).scalar()
            assert held.execute(sa.text("SELECT heartbeat FROM centre_nodes WHERE node = 'A'")).scalar() == beat
            during = node.metrics()
        assert blocked >= 1  # the node's database work was waiting for the lock all along
        delta = {k: during[f"ivr_media_clock_{k}_total"] - before[f"ivr_media_clock_{k}_total"]
                 for k in ("ticks", "stalls", "missed_ticks")}
        assert delta["ticks"] >= 250, delta  # the event loop went on serving the media all along
        if steady:  # (a machine whose clock stalls without the lock says nothing about the lock)
            assert (delta["stalls"], delta["missed_ticks"]) == (0, 0), delta
        deadline = time.monotonic() + 60  # only stops a hung test
        while rows(url, "SELECT heartbeat FROM centre_nodes WHERE node = 'A'")[0][0] == beat:  # it beats again
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        engine.dispose()
        node.stop()
    assert "Traceback" not in (node.log.read_text() if node.log else "")


def operator_calls(messages: Path) -> list[tuple[float, float]]:
    """(first, last message) of each call an operator's phone (SIPp -trace_msg) saw, in order of the first."""
    seen: dict[str, list[float]] = {}
    for block in re.split(r"^-{20,} ", messages.read_text(errors="replace"), flags=re.M)[1:]:
        stamp, _, rest = block.partition("\n")
        call_id = re.search(r"^Call-ID:\s*(\S+)", rest, re.M | re.I)
        if call_id is None:
            continue
        at = time.mktime(time.strptime(stamp.strip()[:19], "%Y-%m-%d %H:%M:%S")) + float("0." + stamp.strip()[20:])
        seen.setdefault(call_id.group(1), []).append(at)
    return sorted((min(times), max(times)) for times in seen.values())


@pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed")
def test_two_hundred_callers_through_the_front_door_race_for_twenty_operators_on_three_nodes(
        pg: PgCluster, phones: Phones, tmp_path: Path, prompt_cache: Path) -> None:
    url = fresh_database(pg)
    # 3 calls/s against 20 operators talking 8 s (2.5 calls/s): a queue forms. At 5 calls/s the machine stalled the
    # nodes for 1-2 s at once and the front door failed INVITEs over to a second node while the first one answered
    # late: that caller reached the second node without its key presses (seen in CI; the finding is in docs/cluster.md)
    operators = {f"op{i}": phones.uas(f"op{i}", SIPP_DIR / "answer_hold_bye.xml", 200, "-d", "8000", "-trace_msg",
                                      "-message_file", str(tmp_path / f"op{i}.msgs")) for i in range(20)}
    config = tmp_path / "ivr.toml"
    config.write_text(f'[queue]\ndatabase_url = "{url}"\n'
                      '[[queue.groups]]\nname = "general"\nwrap_up_s = 0\n'
                      '[[queue.groups]]\nname = "elderly"\nwrap_up_s = 0\n'
                      + "".join(f'[[queue.agents]]\nid = "{op}"\nuri = "sip:{op}@127.0.0.1:{port}"\n'
                                'groups = ["general"]\n' for op, port in operators.items()), encoding="utf-8")
    cluster = Cluster.start(tmp_path / "cluster", prompt_cache, node_env={
        "IVR_CONFIG": str(config), "IVR_FLOW": str(all_day_flow(tmp_path)), "IVR_LOG_LEVEL": "INFO",
        "IVR_RTP_TIMEOUT_S": "120"})
    try:
        xml = scenario("caller", invite_answered(PCMU_EVENTS, routed=True), *GENERAL, recv("BYE"), answer_ok()
                       ).replace("13800138000", "1390[call_number]")
        rc, out = asyncio.run(cluster.sipp(xml, tmp_path / "callers", calls=200, rate=3, limit=200,
                                           timeout_s=600))
        logs = [n.served.log.read_text(errors="replace") if n.served and n.served.log else "" for n in cluster.nodes]
    finally:
        cluster.stop()
    assert sipp_counts(out) == (200, 0), out  # every caller went through to the end of their call
    connected = [m for text in logs for m in re.findall(r"call (\S+): queue_connect agent=(op\d+)", text)]
    messages = {c for text in logs for c in re.findall(r"call (\S+): queue_rejected", text)}
    calls = {c for text in logs for c in re.findall(r"call (\S+) from \S+: flow", text)}
    assert len(calls) == 200 and all(re.search(r"call \S+ from \S+: flow", t) for t in logs)  # on three nodes
    served = {c for c, _ in connected}
    assert len(connected) == len(served) and served | messages == calls and not served & messages
    spans = {op: operator_calls(tmp_path / f"{op}.msgs") for op in operators}
    assert sum(len(s) for s in spans.values()) == len(connected)
    for op, taken in spans.items():  # every operator worked, one call at a time
        assert taken and all(end <= nxt for (_, end), (nxt, _) in zip(taken, taken[1:])), (op, taken)
    assert rows(url, "SELECT count(*) FROM centre_calls") == [(0,)]  # nobody left in the centre's queue
    assert rows(url, "SELECT sum(calls) FROM centre_agents") == [(len(connected),)]  # each given once
