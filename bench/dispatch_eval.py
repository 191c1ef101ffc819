"""Dispatch suggestion figures: training time, accuracy and top-3 accuracy on the held-out labelled set,
the confusion by category, prediction latency, and the suggestions for the shared caller recordings' transcripts.

    .venv/bin/python bench/dispatch_eval.py [LABELLED.tsv] [--transcripts PATH] [--errors]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.triage.dispatch import (
    DEFAULT_EVAL_SET, Dispatcher, evaluate, format_evaluation, load_dispatch_catalogue, load_labelled, retrain,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "audio" / "zh" / "transcripts.tsv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labelled", nargs="?", type=Path, default=DEFAULT_EVAL_SET)
    ap.add_argument("--transcripts", type=Path, default=SHARED)
    ap.add_argument("--errors", action="store_true", help="list the misclassified sentences")
    args = ap.parse_args()

    catalogue = load_dispatch_catalogue()
    n_train = sum(len(c.examples) for c in catalogue.categories)
    retrain(catalogue)  # warm-up: jieba's dictionary load is not training time
    t0 = time.perf_counter()
    model = retrain(catalogue)
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        model.save(path)
        size = path.stat().st_size
    print(f"catalogue: {len(catalogue.categories)} categories, {n_train} examples; "
          f"{model.meta['n_features']} features; trained in {train_s:.2f} s; model file {size / 1024:.0f} KiB")

    labelled = load_labelled(args.labelled)
    print(f"\nheld-out set {args.labelled.name}:")
    ev = evaluate(model, labelled)
    print(format_evaluation(ev))
    if args.errors:
        print("\nmisclassified:")
        for text, true, got in ev.errors:
            print(f"  [{true} -> {got}] {text}")

    dispatcher = Dispatcher(model)
    times = []
    for text, _ in labelled:
        t = time.perf_counter()
        dispatcher.suggest(text)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"\nfull suggestion (category, location, urgency, auto-fill) per sentence: median "
          f"{statistics.median(times):.1f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms")

    if args.transcripts.exists():
        print(f"\nshared caller transcripts ({args.transcripts}):")
        hit1 = hit3 = n = 0
        for line in args.transcripts.read_text(encoding="utf-8").splitlines()[1:]:
            ident, text, label, _ = line.split("\t")
            kind, _, cat = label.partition(":")
            if kind not in ("complaint", "consult"):
                continue
            s = dispatcher.suggest(text)
            top = [p.category for p in s.categories]
            n += 1
            hit1 += top[0] == cat
            hit3 += cat in top
            mark = "ok " if top[0] == cat else ("top3" if cat in top else "MISS")
            loc = s.location.district or "-"
            if s.location.area:
                loc += "/" + s.location.area
            print(f"  {ident} {mark} {label:<18} -> {' | '.join(f'{p.category} {p.score:.2f}' for p in s.categories)}"
                  f"  [{loc}; urgency {s.urgency.level.name.lower()}]")
        if n:
            print(f"  {n} transcripts: accuracy {hit1 / n:.1%}, top-3 {hit3 / n:.1%}")


if __name__ == "__main__":
    main()
