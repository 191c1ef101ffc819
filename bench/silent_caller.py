"""How long callers take to reach a person with the shipped flow: a caller who stays silent, one who presses 0 at
once, one who presses 0 after the main menu, a registered elderly caller who stays silent; with an operator free (the hand-off to the queue) and with nobody free
(the start of the recorded message that stands in for a person). Also the floor: the welcome that must be heard.

    .venv/bin/python bench/silent_caller.py [--voice espeak|kokoro|auto] [--cache DIR]

Calls run through FileChannel in virtual time: the figures are seconds of the call, exact, not a measurement of the
machine. Prompts on these paths are rendered with the chosen voice (standard and elderly style) into the cache
first if missing; their lengths decide everything.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ivr.call import OpenRecording, SavedRecording  # noqa: E402
from ivr.channel.base import CallInfo, TransferResult  # noqa: E402
from ivr.channel.file import FileChannel, parse_script  # noqa: E402
from ivr.flow import load_flow  # noqa: E402
from ivr.flow.runner import FlowRunner  # noqa: E402
from ivr.media.callio import CallIO  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402
from prompts.catalogue import Catalogue  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402
from prompts.voices import choose_voice  # noqa: E402

ON_PATHS = ("welcome", "main_menu", "main_menu_no_input", "elderly_menu", "transfer_agent", "complaint_intro")
MS_PER_BYTE = 1 / 16  # 8 kHz, 16-bit


class Desk(FileChannel):
    """A caller's line whose transfer answers (an operator free) or fails (nobody free); notes when it happened."""

    def __init__(self, script: str, free: bool) -> None:
        super().__init__(parse_script(script), CallInfo(call_id="bench", caller="13800138000"))
        self.free = free
        self.handed_ms: float | None = None

    async def transfer(self, target: str) -> TransferResult:
        self.handed_ms = len(self.played) * MS_PER_BYTE
        if self.free:
            return await super().transfer(target)
        return TransferResult(ok=False, target=target, reason="nobody free")


class MessageSink:
    """Notes when the message recording starts (the caller is heard by the system), and ends the call there."""

    def __init__(self, channel: Desk) -> None:
        self.channel = channel
        self.started_ms: float | None = None

    def open(self, call: object, kind: str) -> OpenRecording:
        self.started_ms = len(self.channel.played) * MS_PER_BYTE
        self.channel.ended = True
        return OpenRecording("", None)

    def finish(self, rec: OpenRecording, call: object, result: object) -> SavedRecording:
        return SavedRecording()

    def confirmed_urgent(self, ticket: str, call: object, hazard: str) -> None:
        pass


@dataclass
class Outcome:
    path: list[str]
    seconds: float


def one_call(flow_path: Path, library: PromptLibrary, script: str, free: bool, elderly: bool = False) -> Outcome:
    flow = load_flow(flow_path, library.catalogue.prompts)
    channel = Desk(script, free)
    sink = MessageSink(channel)
    registered = frozenset({"13800138000"}) if elderly else frozenset()
    runner = FlowRunner(flow, CallIO(channel, None), library, sink, registered)  # type: ignore[arg-type]
    record = asyncio.run(runner.run())
    ms = channel.handed_ms if free else sink.started_ms
    return Outcome(record.path, (ms or 0.0) / 1000)


def subset(catalogue: Catalogue) -> Catalogue:
    return Catalogue(catalogue.path, {pid: catalogue.prompts[pid] for pid in ON_PATHS})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voice", default="espeak")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--flow", type=Path, default=REPO / "flows" / "hotline.yaml")
    args = ap.parse_args()
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    cache = args.cache or Path(tempfile.mkdtemp(prefix="silent-caller-"))
    render_catalogue(subset(catalogue), cache, styles=("standard", "elderly"),
                     engine_factory=lambda: choose_voice(args.voice, cache / "voices")[0])
    library = PromptLibrary(catalogue, cache)
    for pid in ON_PATHS:
        std, old = (len(library.get(pid, s)) * MS_PER_BYTE / 1000 for s in ("standard", "elderly"))
        print(f"prompt {pid:<20} {std:5.1f} s   elderly {old:5.1f} s")
    welcome = len(library.get("welcome")) * MS_PER_BYTE / 1000
    print(f"floor: the welcome that must be heard, {welcome:.1f} s, before any choice or hand-off")
    for label, script, elderly in (("silent", "wait:90000", False), ("presses 0 at once", "!keys:0", False),
                                   ("presses 0 after the menu", "keys:0", False),
                                   ("registered elderly, silent", "wait:90000", True)):
        for free in (True, False):
            got = one_call(args.flow, library, script, free, elderly)
            where = "person (queue hand-off)" if free else "message (recording starts)"
            print(f"{label:<26} -> {where:<28} {got.seconds:5.1f} s   {' > '.join(got.path)}")


if __name__ == "__main__":
    main()
