"""`ivr serve` as a real process: SIP and the console come up, a SIP OPTIONS probe is answered, SIGHUP reloads the
operators (a bad file is logged and changes nothing), and Ctrl-C (SIGINT) drains and stops both without a
traceback."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sippkit import SIPP, caller_bye, invite_answered, pause, run_sipp, scenario

REPO = Path(__file__).resolve().parents[3]


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def options_probe(port: int, n: int = 1) -> bytes:
    msg = (f"OPTIONS sip:12345@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-probe{n}\r\nMax-Forwards: 70\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: probe-{n}@127.0.0.1\r\n"
           "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            return s.recv(4096)
        except TimeoutError:
            return b""


def operator(agent_id: str, group: str = "general") -> str:
    return f'[[queue.agents]]\nid = "{agent_id}"\nuri = "sip:{agent_id}@127.0.0.1:5999"\ngroups = ["{group}"]\n'


def agents_seen(status: Path, want: set[str]) -> bool:
    """Whether the server's published queue status lists exactly the operators `want` (within 10 s)."""
    for _ in range(100):
        try:
            if set(json.loads(status.read_text())["agents"]) == want:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def test_serve_answers_reloads_then_stops_cleanly_on_sigint(tmp_path: Path, prompt_cache: Path) -> None:
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    config = tmp_path / "ivr.toml"
    config.write_text(operator("op1"), encoding="utf-8")
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CACHE": str(prompt_cache),
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web),
           "IVR_CONFIG": str(config)}
    ivr = Path(sys.executable).parent / "ivr"
    proc = subprocess.Popen([str(ivr), "serve", "--drain", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        metrics = b""
        for _ in range(300):  # until both are up (the first start loads the dispatch classifier)
            if proc.poll() is not None:
                break
            try:
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        assert b"ivr_queue" in metrics, proc.stdout.read() if proc.poll() is not None else "console not up"
        assert options_probe(sip).startswith(b"SIP/2.0 200")
        status = tmp_path / "data" / "queue-status.json"
        assert agents_seen(status, {"op1"})
        config.write_text(operator("op1") + operator("op2", "elderly"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        assert agents_seen(status, {"op1", "op2"})
        config.write_text(operator("op3", "vip"), encoding="utf-8")  # a bad file: nothing changes
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert agents_seen(status, {"op1", "op2"}) and options_probe(sip, 2).startswith(b"SIP/2.0 200")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "stopping" in out
    assert "operators reloaded: +op2" in out
    assert "configuration not reloaded: queue_agents: agent 'op3': unknown group 'vip'" in out
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=1)



IVR = Path(sys.executable).parent / "ivr"


def failed_start(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the real `ivr ARGS serve` that should not start; returns (exit code, last line of stderr, all output)."""
    full = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_SIP_HOST": "127.0.0.1",
            "IVR_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
            "IVR_CONSOLE_PORT": str(free_port(socket.SOCK_STREAM)), **env}
    proc = subprocess.run([str(IVR), *args, "serve", "--drain", "0"], env=full, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, lines[-1] if lines else "", proc.stdout + proc.stderr


def test_bad_settings_stop_the_server_with_one_line_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_bytes("[sip]\nhost = '127.0.0.1'\n# 热线\n".encode("gbk"))
    (tmp_path / "file").write_text("")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        cases = [
            (["-c", str(cfg)], {}, f"{cfg}: not UTF-8 text (byte 0xc8 on line 3); save it as UTF-8"),
            ([], {"IVR_SIP_PORT": "99999"}, "sip_port: 99999 is not a port number (0-65535)"),
            ([], {"IVR_DATABASE_URL": "mysql://ivr:secret@db/ivr"},
             "database_url: 'mysql://ivr:***@db/ivr' is not an SQLite or PostgreSQL URL "
             "(sqlite:///FILE or postgresql://USER@HOST/DB)"),
            ([], {"IVR_DATA_DIR": str(tmp_path / "file" / "ivr")},
             f"data_dir: cannot create the folder {tmp_path / 'file' / 'ivr'} (Not a directory)"),
            ([], {"IVR_CONSOLE_PORT": str(busy)}, f"console_port: cannot listen on 127.0.0.1:{busy} "
                                                  "(Address already in use)"),
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip:
            sip.bind(("127.0.0.1", 0))
            port = sip.getsockname()[1]
            cases.append(([], {"IVR_SIP_PORT": str(port)},
                          f"sip_port: cannot listen on 127.0.0.1:{port} (Address already in use)"))
            for args, env, message in cases:
                rc, last, out = failed_start(tmp_path, env, *args)
                assert (rc, last) == (2, f"ivr: configuration error: {message}"), out
                assert "Traceback" not in out and "secret" not in out


@pytest.mark.sipp
@pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")
def test_flow_saved_as_gbk_while_serving_is_rejected_and_calls_keep_the_last_good_flow(
        tmp_path: Path, prompt_cache: Path) -> None:
    flow = tmp_path / "hotline.yaml"
    text = (REPO / "flows" / "hotline.yaml").read_text(encoding="utf-8")
    flow.write_text(text, encoding="utf-8")
    sip = free_port(socket.SOCK_DGRAM)
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CACHE": str(prompt_cache),
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_FLOW": str(flow)}
    log = tmp_path / "serve.log"
    caller = scenario("caller hangs up after 3 s", invite_answered(), pause(3000), caller_bye(2))

    async def call(name: str) -> tuple[int, str]:
        (tmp_path / name).mkdir()
        return await run_sipp(caller, tmp_path / name, sip)

    with log.open("w") as out:
        proc = subprocess.Popen([str(IVR), "serve", "--no-console", "--drain", "1"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if proc.poll() is not None or options_probe(sip).startswith(b"SIP/2.0 200"):
                break
            time.sleep(0.2)
        rc, sipp_out = asyncio.run(call("before"))
        assert rc == 0, sipp_out
        flow.write_bytes(("# 热线\n" + text).encode("gbk"))  # saved by a GBK editor
        for name in ("after1", "after2"):  # answered and not dropped: the IVR does not hang up on the caller
            rc, sipp_out = asyncio.run(call(name))
            assert rc == 0, f"{name}: {sipp_out}"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    rejected = [line for line in output.splitlines() if "flow edit rejected" in line]
    assert len(rejected) == 1, output
    assert rejected[0].endswith(f"flow edit rejected: {flow}:1: not UTF-8 text (byte 0xc8); save it as UTF-8; "
                                f"keeping version {hashlib.sha256(text.encode()).hexdigest()[:12]}")
    assert "Traceback" not in output and "handler failed" not in output and proc.returncode == 0
    assert output.count("ended: caller hung up") == 3


def serve(env: dict[str, str]) -> subprocess.Popen[str]:
    """`ivr serve --no-console`, answering SIP OPTIONS once it is ready (within a minute)."""
    proc = subprocess.Popen([str(IVR), "serve", "--no-console", "--drain", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for n in range(300):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        if options_probe(int(env["IVR_SIP_PORT"]), n).startswith(b"SIP/2.0 200"):
            return proc
        time.sleep(0.2)
    raise AssertionError("ivr serve did not answer OPTIONS")


def sipp_complaint(tmp_path: Path, port: int, prompt_cache: Path) -> subprocess.Popen[bytes]:
    """A SIPp caller who presses 1, waits for the beep and speaks for half a minute."""
    from sippkit import PCMU_EVENTS, free_udp_port, pcmu_pcap, play, sipp_media_port

    from asr.audio import duration_ms, read_wav
    from prompts import PromptLibrary, load_catalogue

    prompts = PromptLibrary(load_catalogue(REPO / "prompts" / "catalogue.yaml"), prompt_cache)
    speech = b"".join(read_wav(REPO / "audio_fixtures" / "zh" / f"c0{i}.wav") for i in range(1, 9))
    xml = scenario("long complaint", invite_answered(PCMU_EVENTS), pause(1500),
                   play("/usr/share/sip-tester/dtmf_2833_1.pcap", 600),
                   pause(duration_ms(prompts.get("complaint_intro")) + 1500),
                   play(pcmu_pcap(tmp_path / "speech.pcap", speech), duration_ms(speech) + 500), caller_bye(2))
    (tmp_path / "caller.xml").write_text(xml, encoding="iso-8859-1")
    assert SIPP is not None
    return subprocess.Popen([SIPP, "-sf", str(tmp_path / "caller.xml"), f"127.0.0.1:{port}", "-i", "127.0.0.1",
                             "-p", str(free_udp_port()), "-mi", "127.0.0.1", "-mp", str(sipp_media_port()),
                             "-m", "1", "-nostdin", "-timeout", "120s"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.sipp
@pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")
def test_a_recording_cut_by_sigkill_is_repaired_at_restart_and_another_nodes_is_left(
        tmp_path: Path, prompt_cache: Path) -> None:
    from ivr.media.recording import HEADER_BYTES, RecordingWriter
    from ivr.tickets import TicketStore

    sip = free_port(socket.SOCK_DGRAM)
    data = tmp_path / "data"
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_PROMPTS_CACHE": str(prompt_cache), "IVR_NODE_ID": "node-a",
           "IVR_SIP_HOST": "127.0.0.1", "IVR_SIP_PORT": str(sip), "IVR_RTP_PORT_MIN": "46000",
           "IVR_RTP_PORT_MAX": "46999"}
    env.pop("IVR_CONFIG", None)
    proc = serve(env)
    caller = sipp_complaint(tmp_path, sip, prompt_cache)
    store = TicketStore(f"sqlite:///{data / 'ivr.db'}")
    other = RecordingWriter(data / "recordings" / "other" / "b.wav", flush_every=1)
    try:
        for _ in range(600):  # until 2 s of the caller's message are on disk
            tickets = store.list()
            if tickets and (data / "recordings" / tickets[0].recording).stat().st_size > HEADER_BYTES + 32_000:
                break
            assert proc.poll() is None and caller.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        [cut] = store.list()
        wav = data / "recordings" / cut.recording
        assert cut.transcription.value == "recording" and cut.node == "node-a"
        assert wav.read_bytes()[40:44] == b"\0\0\0\0"  # the header still says no audio
        for _ in range(50):
            other.write(b"\x10\x00" * 160)  # another node, recording right now into the same store
        theirs = store.create(caller="13900000009", call_id="b", kind="complaint", menu_path=[], flags=[],
                              recording="other/b.wav", node="node-b")
        proc = serve(env)
        repaired = store.get(cut.number)
        size = wav.stat().st_size
        assert repaired.transcription.value == "pending" and "interrupted" in repaired.flags
        assert int.from_bytes(wav.read_bytes()[40:44], "little") == size - HEADER_BYTES > 32_000
        assert int.from_bytes(wav.read_bytes()[4:8], "little") == size - 8
        assert repaired.audio_ms == (size - HEADER_BYTES) // 16
        assert store.verify_recording(cut.number, data / "recordings").ok
        assert store.get(theirs.number).transcription.value == "recording"
        assert (data / "recordings" / "other" / "b.wav").read_bytes()[40:44] == b"\0\0\0\0"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        other._f.close()
        for p in (proc, caller):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert "node node-a: 1 recording(s) cut off when it stopped repaired, flagged interrupted" in out
