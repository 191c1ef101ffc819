"""A console over a real store with real recordings, one user of each role, and signed-in clients; the same
console over a copy of the fixture knowledge base (`kb_console`)."""
from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kbfiles import fixture_copy

from asr.results import Transcript, Word
from ivr.config import load_settings
from ivr.console import create_app
from ivr.console.deps import ConsoleContext
from ivr.kb import Entry
from ivr.live import LiveState
from ivr.tickets.store import TicketStore
from ivr.triage.suggest import dispatch_suggester

REPO = Path(__file__).resolve().parents[3]
ZH = REPO / "audio_fixtures" / "zh"
PASSWORD = "correct horse 12345"


def fixture_texts() -> dict[str, tuple[str, float]]:
    """Fixture id -> (what the caller says, seconds of speech)."""
    lines = (ZH / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {cols[0]: (cols[1], float(cols[3])) for cols in (line.split("\t") for line in lines)}


def transcript_for(text: str, seconds: float, low: set[int] = frozenset()) -> Transcript:  # type: ignore[assignment]
    """The fixture's text as two-character words spread evenly over the recording; words in `low` are
    given a low confidence."""
    chunks = [text[i:i + 2] for i in range(0, len(text), 2)]
    step = seconds / len(chunks)
    return Transcript(
        text=text, engine="vosk", model="test", audio_ms=int(seconds * 1000), raw_text=" ".join(chunks),
        words=tuple(Word(c, round(i * step, 3), round((i + 1) * step, 3), 0.35 if i in low else 0.93)
                    for i, c in enumerate(chunks)))


@dataclass
class Console:
    app: FastAPI
    ctx: ConsoleContext
    store: TicketStore
    recordings: Path
    numbers: dict[str, str]  # fixture id -> ticket number
    password: str = PASSWORD  # every fixture user's password

    def client(self, role: str | None = "operator") -> TestClient:
        """A client signed in through the login form as the user of that role (None: not signed in)."""
        c = TestClient(self.app)
        if role is not None:
            page = c.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = c.post("/login", data={"username": role, "password": PASSWORD, "csrf": token, "next": "/tickets"},
                       follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/tickets", r.text
        return c

    def api(self, role: str = "operator") -> tuple[TestClient, str]:
        """A client signed in through the API, and its CSRF token."""
        c = TestClient(self.app)
        r = c.post("/api/session", json={"username": role, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf"]


@pytest.fixture(scope="session")
def suggester(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return dispatch_suggester(tmp_path_factory.mktemp("dispatch"))


@pytest.fixture
def console(tmp_path: Path, suggester) -> Console:  # type: ignore[no-untyped-def]
    settings = load_settings(overrides={"data_dir": tmp_path / "data"}, environ={})
    store = TicketStore(settings.database_url, suggest=suggester)
    recordings = Path(settings.recordings_dir)  # type: ignore[arg-type]
    (recordings / "20260305").mkdir(parents=True)
    texts = fixture_texts()
    numbers = {}
    for fid in ("c01", "c02", "c03", "c04"):
        wav = recordings / "20260305" / f"{fid}.wav"
        shutil.copy(ZH / f"{fid}.wav", wav)
        t = store.create(caller="13812345678", call_id=f"call-{fid}", kind="complaint", menu_path=["welcome"],
                         flags=[], recording=f"20260305/{fid}.wav")
        text, seconds = texts[fid]
        store.complete_recording(t.number, audio_ms=int(seconds * 1000),
                                 sha256=hashlib.sha256(wav.read_bytes()).hexdigest(),
                                 transcript=transcript_for(text, seconds, low={2, 5}))
        numbers[fid] = t.number
    app = create_app(settings, store=store, live=LiveState(), suggester=suggester)
    ctx: ConsoleContext = app.state.console
    for role in ("operator", "supervisor", "admin"):
        ctx.users.add(role, PASSWORD, role)
    return Console(app, ctx, store, recordings, numbers)


KB_QUESTION = "我的社保卡丢了想问一下去哪里补办"


@dataclass
class Renders:
    """The re-render port of the knowledge-base tests: it notes each entry's id and spoken answer."""

    done: list[tuple[str, str]] = field(default_factory=list)
    called: threading.Event = field(default_factory=threading.Event)

    def __call__(self, entry: Entry) -> None:
        self.done.append((entry.id, entry.spoken))
        self.called.set()


@dataclass
class KbConsole:
    console: Console  # over the same store and users as `console`, with the knowledge base
    kb_dir: Path
    renders: Renders
    number: str  # a ticket whose transcript is `question`
    question: str = KB_QUESTION


@pytest.fixture
def kb_console(console: Console, tmp_path: Path) -> KbConsole:
    """The console over a copy of the fixture knowledge base (two files, six entries), with a recording re-render
    port and a ticket whose caller asked about a lost social-security card."""
    kb_dir = fixture_copy(tmp_path)
    renders = Renders()
    settings = load_settings(overrides={"data_dir": tmp_path / "data", "kb_dir": kb_dir}, environ={})
    app = create_app(settings, store=console.store, live=LiveState(), suggester=console.ctx.suggester,
                     rerender=renders)
    t = console.store.create(caller="13812345678", call_id="call-kb", kind="consult", menu_path=["welcome"],
                             flags=[], recording="")
    console.store.set_transcript(t.number, transcript_for(KB_QUESTION, 3.0))
    return KbConsole(dataclasses.replace(console, app=app, ctx=app.state.console), kb_dir, renders, t.number)


@pytest.fixture
def http() -> Iterator[Callable[[FastAPI], str]]:
    """Serve an app on a real HTTP server on 127.0.0.1 (a free port, a thread of its own) until the test ends;
    returns its base URL."""
    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        while not server.started:  # start-up only; nothing is timed
            if not thread.is_alive():
                pytest.fail("the console server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join()


@pytest.fixture
def served(console: Console, http: Callable[[FastAPI], str]) -> str:
    """The console app on a real HTTP server on 127.0.0.1."""
    return http(console.app)
