"""The Mandarin test speech: 100 utterances with texts and labels, every file telephone audio, every label one the
product knows (a dispatch category, a main-menu intent); G.711 µ-law WAVs read as PCM16."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

from asr.audio import SAMPLE_RATE, read_wav, write_ulaw_wav

REPO = Path(__file__).resolve().parents[2]
SETS = (REPO / "audio_fixtures" / "zh", REPO / "audio_fixtures" / "zh-kokoro")


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "transcripts.tsv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_one_hundred_labelled_utterances() -> None:
    everything = [(folder, r) for folder in SETS for r in rows(folder)]
    assert len(everything) == 100 and len({r["id"] for _, r in everything}) == 100
    catalogue = yaml.safe_load((REPO / "ivr" / "triage" / "data" / "catalogue.yaml").read_text(encoding="utf-8"))
    categories = set(catalogue["categories"]) if isinstance(catalogue["categories"], dict) else {
        c["name"] for c in catalogue["categories"]}
    kokoro = rows(SETS[1])
    for r in kokoro:
        kind, _, value = r["label"].partition(":")
        assert kind in ("complaint", "consult", "menu", "number"), r
        if kind in ("complaint", "consult"):
            assert value in categories, r
        pcm = read_wav(SETS[1] / f"{r['id']}.wav")
        assert abs(len(pcm) / 2 / SAMPLE_RATE - float(r["seconds"])) < 0.01
        assert r["voice"].startswith("kokoro/") and r["text"]
    assert {r["label"].split(":")[1] for r in kokoro if r["label"].startswith("complaint")} <= categories
    assert sum((SETS[1] / f"{r['id']}.wav").stat().st_size for r in kokoro) < 3_000_000


def test_a_ulaw_wav_reads_as_the_line_decoded_it(tmp_path: Path) -> None:
    from ivr.codecs.g711 import ulaw_decode, ulaw_encode

    pcm = (np.sin(np.arange(8000) * 0.2) * 12000).astype("<i2").tobytes()
    coded = ulaw_encode(pcm)
    write_ulaw_wav(tmp_path / "a.wav", coded)
    assert (tmp_path / "a.wav").stat().st_size == 46 + 8000  # 8 bits a sample
    assert read_wav(tmp_path / "a.wav") == ulaw_decode(coded)
    write_ulaw_wav(tmp_path / "odd.wav", coded[:101])  # an odd data chunk is padded, still read exactly
    assert read_wav(tmp_path / "odd.wav") == ulaw_decode(coded[:101])
