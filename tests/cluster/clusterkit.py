"""A real hotline cluster on loopback for tests and benchmarks: Kamailio with the shipped kamailio.cfg in front of
real `ivr serve` nodes, and SIPp callers through it.

Addresses: Kamailio listens on FRONT (127.0.0.10), the address every node trusts (`ivr serve --trust FRONT`); the
nodes listen on 127.0.0.1 with ports of their own; callers come from TRUNK (127.0.0.20, the carrier's trunk, which
Kamailio trusts: no flood limit per address) or from any other 127.x address (a caller straight from outside).
Kamailio runs in the foreground (-DD -E) with its own runtime dir, its settings given as `-A NAME=value` over the
shipped defaults and its node list rendered into that dir; it is stopped at the end. Which node took a call is
counted by the nodes themselves (/metrics: ivr_sip_calls_total); Kamailio's log says what it saw (nodes up/down,
failovers), and its lines are read as they come.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from serveproc import Served, free_port, launch
from sippkit import (PCMU_ONLY, answer_ok, caller_bye, invite_answered, pause, pcmu_pcap, recv, request, run_sipp,
                     scenario, sdp)

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kamailio"
KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
FRONT = "127.0.0.10"
TRUNK = "127.0.0.20"

#: the shipped settings overridden for tests: quicker probes, a time-out that a busy shared machine does not trip,
#: few workers
TEST_SETTINGS = {"PROBE_INTERVAL": "1", "NODE_TIMEOUT_MS": "2000", "CHILDREN": "2", "LOG_LEVEL": "1",
                 "TRUSTED_TRUNKS": f'"{TRUNK}/32"'}


def call(hold_ms: int = 300) -> str:
    """A caller through the front door: answered, on for `hold_ms`, hung up along the Record-Route."""
    return scenario("call through the front door", invite_answered(PCMU_ONLY, routed=True), pause(hold_ms),
                    caller_bye(2, routed=True))


def held(workdir: Path, seconds: int = 120) -> str:
    """A silent caller (RTP of silence, so the node's RTP time-out does not end the call) who stays on until the node
    hangs up; the node's BYE comes back through the front door."""
    silence = pcmu_pcap(workdir / "silence.pcap", bytes(2 * 8000 * seconds))
    return scenario("held call", invite_answered(PCMU_ONLY, routed=True),
                    f'  <nop><action><exec play_pcap_audio="{silence}"/></action></nop>\n', recv("BYE"), answer_ok())


#: one INVITE a "call", no retransmission: what a flooding scanner sends. Answered ones are logged, ACKed and hung
#: up at once (the BYE may be dropped by the front door like the rest: the node ends that call by its RTP time-out).
FLOOD = scenario(
    "INVITE flood",
    request("INVITE", 1, sdp(*PCMU_ONLY).replace("{v}", "1"), retrans=False),
    '  <recv response="100" optional="true" timeout="4000" ontimeout="1"/>\n'
    '  <recv response="200" rrs="true" timeout="4000" ontimeout="1">\n'
    '    <action><log message="answered [call_id]"/></action>\n  </recv>\n',
    request("ACK", 1, in_dialog=True, retrans=False, routed=True),
    request("BYE", 2, in_dialog=True, retrans=False, routed=True),
    '  <label id="1"/>\n')


@dataclass
class Node:
    """One `ivr serve` node: its ports, data dir and log are its own and kept across restarts."""

    name: str
    sip_port: int
    web_port: int
    rtp: tuple[int, int]
    home: Path
    served: Served | None = None
    env: dict[str, str] = field(default_factory=dict)  # the settings it was started with beyond the defaults

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.sip_port}"

    @property
    def up(self) -> bool:
        return self.served is not None and self.served.proc.poll() is None

    def start(self, prompt_cache: Path, env: dict[str, str] | None = None, drain_s: int = 60) -> None:
        """Start it (trusting the front door) and wait until its console answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = dict(env or {})
        settings = {"IVR_NODE_ID": self.name, "IVR_RTP_PORT_MIN": str(self.rtp[0]),
                    "IVR_RTP_PORT_MAX": str(self.rtp[1]), "IVR_RTP_TIMEOUT_S": "5", **(env or {})}
        log = self.home / f"serve-{int(time.time() * 1000)}.log"
        self.served = launch(self.home / "data", prompt_cache, "--trust", FRONT, "--drain", str(drain_s),
                             env=settings, sip=self.sip_port, web=self.web_port, log=log)

    def metrics(self) -> dict[str, float]:
        assert self.served is not None
        return self.served.metrics()

    def calls(self) -> int:
        """Calls this node has taken since it started (its own count)."""
        return int(self.metrics().get("ivr_sip_calls_total", 0))

    def refused(self, reason: str) -> int:
        return int(self.metrics().get(f'ivr_sip_invites_refused_total{{reason="{reason}"}}', 0))

    def signal(self, sig: int) -> None:
        assert self.served is not None
        self.served.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no drain, no goodbye."""
        assert self.served is not None
        self.served.proc.kill()
        self.served.proc.wait()

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()

    def wait_exit(self, timeout_s: float = 60) -> int:
        assert self.served is not None
        return self.served.proc.wait(timeout=timeout_s)


@dataclass
class FrontDoor:
    """Kamailio with the shipped kamailio.cfg, in the foreground with its own runtime dir."""

    home: Path
    port: int
    settings: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    seen: int = 0  # log lines already looked at by wait_for()

    @property
    def log(self) -> Path:
        return self.home / "kamailio.log"

    def start(self, uris: list[str], up: int | None = None) -> None:
        """Start it in front of the nodes at `uris` and wait until it has seen `up` of them (default: all) come up."""
        assert KAMAILIO is not None
        run = self.home / "run"
        run.mkdir(parents=True, exist_ok=True)
        render_nodes(DEPLOY / "hotline-nodes.list", self.home / "nodes.list", uris)
        defines = {**self.settings, "LISTEN": f"udp:{FRONT}:{self.port}",
                   "NODES_FILE": f'"{self.home / "nodes.list"}"', "CTL_SOCKET": f'"unix:{run / "ctl"}"'}
        args = [KAMAILIO, "-f", str(DEPLOY / "kamailio.cfg"), "-DD", "-E", "-Y", str(run), "-P", str(run / "pid"),
                "-m", "32", "-M", "4", "-w", str(run)]
        for name, value in defines.items():
            args += ["-A", f"{name}={value}"]
        with self.log.open("wb") as out:  # its own process group: stopped as a whole at the end
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if up is None or up > 0:
            self.wait_for(r"node sip:\S+ is up", len(uris) if up is None else up)

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def mark(self) -> int:
        """Where the log is now, for count(since=...)."""
        return len(self.lines())

    def count(self, pattern: str, since: int = 0) -> int:
        """Log lines matching `pattern` (from line `since` on)."""
        return sum(1 for line in self.lines()[since:] if re.search(pattern, line))

    def wait_for(self, pattern: str, count: int = 1, limit_s: float = 120) -> list[str]:
        """Wait until `count` new log lines match `pattern` (the limit only stops a hung test); returns them."""
        found: list[str] = []
        deadline = time.monotonic() + limit_s
        while True:
            assert self.proc is not None and self.proc.poll() is None, "kamailio exited:\n" + "\n".join(self.lines())
            lines = self.lines()
            for line in lines[self.seen:]:
                self.seen += 1
                if re.search(pattern, line):
                    found.append(line)
                    if len(found) == count:
                        return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} lines like {pattern!r} in kamailio's log:\n" + "\n".join(lines))
            time.sleep(0.05)

    def is_up(self, uri: str) -> bool | None:
        """What the front door last logged about the node at `uri`: up, down, or None before it said either."""
        state = None
        for line in self.lines():
            seen = re.search(rf"node {re.escape(uri)} is (up|down)", line)
            if seen:
                state = seen.group(1) == "up"
        return state

    def wait_until_down(self, uri: str, limit_s: float = 120) -> None:
        """Wait until the front door's latest word on `uri` is that it is down."""
        deadline = time.monotonic() + limit_s
        while self.is_up(uri) is not False:
            assert self.proc is not None and self.proc.poll() is None, "kamailio exited:\n" + "\n".join(self.lines())
            if time.monotonic() > deadline:
                raise AssertionError(f"kamailio never marked {uri} down:\n" + "\n".join(self.lines()))
            time.sleep(0.05)

    def skip_log(self) -> None:
        """Look only at lines written from now on."""
        self.seen = len(self.lines())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def render_nodes(template: Path, out: Path, uris: list[str]) -> None:
    """The node list template with its example nodes replaced by `uris` (same set, flags and priority)."""
    lines = template.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("1 sip:"))
    fields = lines[first].split()
    rows = [" ".join([fields[0], uri, *fields[2:]]) for uri in uris]
    out.write_text("\n".join([line for line in lines if not line.startswith("1 sip:")] + rows) + "\n")


@dataclass
class Cluster:
    home: Path
    prompt_cache: Path
    nodes: list[Node] = field(default_factory=list)
    door: FrontDoor | None = None

    @classmethod
    def start(cls, home: Path, prompt_cache: Path, nodes: int = 3, settings: dict[str, str] | None = None,
              first_rtp: int = 32000, node_env: dict[str, str] | None = None) -> Cluster:
        """`nodes` nodes (started one after the other: each loads its flow and classifier) with `node_env` beyond
        the defaults, and the front door with `settings` over the shipped ones (default: TEST_SETTINGS)."""
        cluster = cls(home, prompt_cache)
        try:
            for i in range(nodes):
                node = Node(f"node{i + 1}", free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM),
                            (first_rtp + 1000 * i, first_rtp + 1000 * i + 998), home / f"node{i + 1}")
                node.start(prompt_cache, node_env)
                cluster.nodes.append(node)
            cluster.door = FrontDoor(home / "kamailio", free_port(socket.SOCK_DGRAM),
                                     TEST_SETTINGS if settings is None else settings)
            cluster.door.start([n.uri for n in cluster.nodes])
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def front(self) -> FrontDoor:
        assert self.door is not None
        return self.door

    def calls(self) -> list[int]:
        """Calls taken so far, per node (0 for a node that is down)."""
        return [n.calls() if n.up else 0 for n in self.nodes]

    def restart(self, node: Node, env: dict[str, str] | None = None) -> None:
        """(Re)start `node` and wait until the front door has seen it come up."""
        if node.up:
            node.stop()
        # A node back within one probe interval was never seen down, and would never be logged "up" again.
        self.front.wait_until_down(node.uri)
        self.front.skip_log()
        node.start(self.prompt_cache, env)
        self.front.wait_for(rf"node {re.escape(node.uri)} is up")

    async def sipp(self, xml: str, workdir: Path, calls: int, rate: float, limit: int | None = None,
                   local_ip: str = TRUNK, extra: list[str] | None = None, timeout_s: int = 300,
                   door: FrontDoor | None = None) -> tuple[int, str]:
        """SIPp callers from `local_ip` through the front door (or another one, `door`)."""
        workdir.mkdir(parents=True, exist_ok=True)
        return await run_sipp(xml, workdir, (door or self.front).port, calls=calls, rate=rate, limit=limit,
                              extra=extra, timeout_s=timeout_s, local_ip=local_ip, server_host=FRONT)

    def stop(self) -> None:
        """Stop the front door and every node still running (Ctrl-C, killed if it does not stop)."""
        if self.door is not None:
            self.door.stop()
        for node in self.nodes:
            if node.served is not None and node.up:
                node.stop()
