"""`ivr serve` as a real process for tests: free ports, start it, wait until SIP and the console are up, stop it
with Ctrl-C (SIGINT) and hand back what it printed."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen[str]
    sip_port: int
    web_port: int
    data_dir: Path
    output: list[str] = field(default_factory=list)  # filled when the process has stopped
    log: Path | None = None  # where it writes its log, if not to a pipe

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def metrics(self) -> dict[str, float]:
        """The console's /metrics as name{labels} -> value."""
        text = urllib.request.urlopen(f"{self.url}/metrics", timeout=10).read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", text, re.M)}

    def rss_kib(self, key: str = "VmRSS") -> int:
        """The server's resident memory (VmRSS) or its peak so far (VmHWM), in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]

    def stop(self) -> None:
        """Ctrl-C (SIGINT), then wait for it to drain and exit (killed if it does not); keeps what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        printed = self.proc.communicate()[0] or ""
        if self.log is not None:
            printed = self.log.read_text(errors="replace")
        self.output.extend(printed.splitlines())


def launch(data: Path, prompt_cache: Path, *args: str, env: dict[str, str] | None = None,
           sip: int | None = None, web: int | None = None, log: Path | None = None, nice: int = 0) -> Served:
    """Start `ivr serve --drain 2 ARGS` (a later --drain wins) with its own data dir on loopback ports (free ones by
    default) at `nice`, its output to `log` or a pipe, and wait until its console answers."""
    sip, web = sip or free_port(socket.SOCK_DGRAM), web or free_port(socket.SOCK_STREAM)
    full_env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_PROMPTS_CACHE": str(prompt_cache),
                "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web), **(env or {})}
    ivr = Path(sys.executable).parent / "ivr"
    out = log.open("w") if log is not None else subprocess.PIPE
    niced = ["nice", "-n", str(nice)] if nice and (nice > 0 or os.geteuid() == 0) else []
    proc = subprocess.Popen([*niced, str(ivr), "serve", "--drain", "2", *args], env=full_env, stdout=out,
                            stderr=subprocess.STDOUT, text=True)
    if log is not None:
        out.close()  # type: ignore[union-attr]
    served = Served(proc, sip, web, data, log=log)
    for _ in range(300):  # until the console is up (the first start loads the dispatch classifier)
        if proc.poll() is not None:
            served.stop()
            raise AssertionError("ivr serve exited: " + "\n".join(served.output))
        try:
            urllib.request.urlopen(f"{served.url}/metrics", timeout=1).read()
            return served
        except OSError:
            time.sleep(0.2)
    served.stop()
    raise AssertionError("the console did not come up")


@contextmanager
def serve(tmp_path: Path, prompt_cache: Path, *args: str, env: dict[str, str] | None = None,
          nice: int = 0) -> Iterator[Served]:
    """`ivr serve ARGS` on free loopback ports with its own data dir, at `nice` (a negative one needs root: as a PBX
    runs its media, e.g. asterisk -p); stopped by SIGINT on the way out (killed if it does not stop)."""
    served = launch(tmp_path / "data", prompt_cache, *args, env=env, nice=nice)
    try:
        yield served
    finally:
        served.stop()
