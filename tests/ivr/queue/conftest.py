import itertools
import socket
import subprocess
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sipp(tmp_path):
    """Start SIPp on a free 127.0.0.1 port for `calls` calls, tracing messages; returns (process, port)."""
    procs: list[subprocess.Popen] = []
    media_ports = itertools.count(20000, 4)  # -mp and -mp + 2 of each SIPp, in blocks that never overlap

    def start(args: list[str], calls: int, where: Path = tmp_path) -> tuple[subprocess.Popen, int]:
        port = _free_port()
        media = next(media_ports)
        proc = subprocess.Popen(["sipp", "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-nostdin", "-mp", str(media),
                                 "-trace_msg", "-message_file", str(where / f"msgs{port}.log"), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where)
        procs.append(proc)
        return proc, port

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
