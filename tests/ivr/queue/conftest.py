import subprocess
from pathlib import Path

import pytest
from sippkit import free_udp_port, sipp_media_port


@pytest.fixture
def sipp(tmp_path):
    """Start SIPp on a free 127.0.0.1 port for `calls` calls, tracing messages; returns (process, port)."""
    procs: list[subprocess.Popen] = []

    def start(args: list[str], calls: int, where: Path = tmp_path) -> tuple[subprocess.Popen, int]:
        port = free_udp_port()
        proc = subprocess.Popen(["sipp", "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-nostdin", "-mp", str(sipp_media_port()),
                                 "-trace_msg", "-message_file", str(where / f"msgs{port}.log"), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where)
        procs.append(proc)
        return proc, port

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
