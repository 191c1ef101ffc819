"""Dispatch suggestion: the catalogue, training and evaluating the classifier, and one call that suggests
everything an operator checks on a ticket (category and department, district, urgency, caller details).

The catalogue is a YAML file (``data/catalogue.yaml`` ships with a Beijing 12345-style city)::

    version: 1
    categories:
      - name: 供暖
        department: 区城市管理委员会（供热管理办公室）
        description: ...
        examples: [我家暖气一点都不热屋里才十四度, ...]
"""
from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asr.textclass import Prediction, TextClassifier, TrainConfig
from ivr.errors import IvrError
from ivr.storage import write_atomic
from ivr.triage.autofill import AutoFill, extract_autofill
from ivr.triage.gazetteer import Gazetteer, Location, default_gazetteer
from ivr.triage.urgency import UrgencyResult, detect_urgency

__all__ = [
    "CatalogueError",
    "Category",
    "DispatchCatalogue",
    "Correction",
    "Evaluation",
    "Suggestion",
    "Dispatcher",
    "DEFAULT_CATALOGUE",
    "DEFAULT_EVAL_SET",
    "load_dispatch_catalogue",
    "load_labelled",
    "retrain",
    "evaluate",
    "model_path",
    "save_model",
    "complaint_text",
    "format_evaluation",
]

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CATALOGUE = DATA_DIR / "catalogue.yaml"
DEFAULT_EVAL_SET = DATA_DIR / "eval.tsv"
MODEL_FILENAME = "dispatch-model.npz"
CORRECTION_WEIGHT = 2.0  # an operator's correction is a real ticket: it counts twice a catalogue example


class CatalogueError(IvrError, ValueError):
    """A catalogue or labelled file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Category:
    """One dispatch category: who handles it, what it covers, and how callers put it."""

    name: str
    department: str
    description: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class DispatchCatalogue:
    """The categories of a city's hotline, in file order."""

    categories: tuple[Category, ...]
    city: str = ""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for c in self.categories:
            if c.name in seen:
                raise CatalogueError(f"category {c.name!r} appears twice")
            seen.add(c.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def department(self, name: str) -> str:
        for c in self.categories:
            if c.name == name:
                return c.department
        raise CatalogueError(f"unknown category {name!r}")

    def departments(self) -> dict[str, str]:
        return {c.name: c.department for c in self.categories}

    def fingerprint(self) -> str:
        """A short hash of the categories, departments and examples (to tell which catalogue a model learnt)."""
        h = hashlib.sha256()
        for c in self.categories:
            h.update("\x1f".join((c.name, c.department, *c.examples)).encode("utf-8") + b"\x1e")
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Correction:
    """An operator's correction: this transcript belongs to that category."""

    text: str
    category: str


def load_dispatch_catalogue(path: str | Path = DEFAULT_CATALOGUE) -> DispatchCatalogue:
    """Read and validate a catalogue file; raise CatalogueError naming the file and the faulty entry."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: catalogue file not found") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("categories"), list):
        raise CatalogueError(f"{path}: expected a mapping with a 'categories' list")
    cats = []
    for i, entry in enumerate(raw["categories"], 1):
        if not isinstance(entry, dict):
            raise CatalogueError(f"{path}: category #{i} is not a mapping")
        for key in ("name", "department"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise CatalogueError(f"{path}: category #{i} has no {key}")
        examples = entry.get("examples") or []
        if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
            raise CatalogueError(f"{path}: category {entry['name']!r}: examples must be a list of sentences")
        if not examples:
            raise CatalogueError(f"{path}: category {entry['name']!r} has no examples")
        cats.append(
            Category(
                name=entry["name"].strip(),
                department=entry["department"].strip(),
                description=str(entry.get("description") or "").strip(),
                examples=tuple(e.strip() for e in examples),
            )
        )
    if len(cats) < 2:
        raise CatalogueError(f"{path}: a catalogue needs at least two categories")
    try:
        return DispatchCatalogue(tuple(cats), city=str(raw.get("city") or ""))
    except CatalogueError as exc:
        raise CatalogueError(f"{path}: {exc}") from None


def load_labelled(path: str | Path) -> list[tuple[str, str]]:
    """Read a labelled TSV (``text<TAB>category``, an optional header line ``text	category``)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CatalogueError(f"{path}: labelled file not found") from None
    out = []
    for n, row in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if not row or not "".join(row).strip() or row[0].startswith("#"):
            continue
        if n == 1 and [c.strip() for c in row[:2]] == ["text", "category"]:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise CatalogueError(f"{path}:{n}: expected text<TAB>category")
        out.append((row[0].strip(), row[1].strip()))
    return out


def retrain(
    catalogue: DispatchCatalogue,
    corrections: Iterable[Any] = (),
    config: TrainConfig | None = None,
    correction_weight: float = CORRECTION_WEIGHT,
) -> TextClassifier:
    """Train a classifier on the catalogue's examples plus operators' corrections.

    A correction is a ``(text, category)`` pair or any object with ``text`` and ``category`` attributes (a
    :class:`Correction`, the store's ``StoredCorrection``). Corrections naming a category the catalogue no longer
    has are skipped with a warning (a catalogue may retire a category while old tickets keep it).
    """
    texts: list[str] = []
    labels: list[str] = []
    weights: list[float] = []
    for category in catalogue.categories:
        for ex in category.examples:
            texts.append(ex)
            labels.append(category.name)
            weights.append(1.0)
    known = set(catalogue.names)
    skipped: Counter[str] = Counter()
    n_corr = 0
    for corr in corrections:
        text, cat = (corr.text, corr.category) if hasattr(corr, "category") else corr
        if cat not in known:
            skipped[cat] += 1
            continue
        if not text.strip():
            continue
        texts.append(text)
        labels.append(cat)
        weights.append(correction_weight)
        n_corr += 1
    for cat, n in skipped.items():
        log.warning("skipped %d correction(s) to %r: not in the catalogue", n, cat)
    model = TextClassifier.fit(texts, labels, catalogue.departments(), weights, config)
    model.meta.update({
        "n_corrections": n_corr,
        "n_skipped": sum(skipped.values()),
        "city": catalogue.city,
        "catalogue": catalogue.fingerprint(),
    })
    return model


@dataclass(frozen=True)
class Evaluation:
    """Accuracy figures of a classifier on a labelled set."""

    n: int
    accuracy: float
    top3_accuracy: float
    confusion: dict[str, Counter[str]]  # true category -> predicted category -> count
    errors: tuple[tuple[str, str, str], ...]  # (text, true, predicted)

    def per_category(self) -> dict[str, tuple[int, float]]:
        """Category -> (number of sentences, accuracy)."""
        out = {}
        for true, row in self.confusion.items():
            total = sum(row.values())
            out[true] = (total, row[true] / total if total else 0.0)
        return out


def evaluate(model: TextClassifier, labelled: Sequence[tuple[str, str]]) -> Evaluation:
    """Accuracy, top-3 accuracy and the confusion by category of ``model`` on ``(text, category)`` pairs."""
    if not labelled:
        raise CatalogueError("no labelled sentences to evaluate on")
    unknown = sorted({c for _, c in labelled if c not in model.classes})
    if unknown:
        raise CatalogueError(f"labelled categories not in the model: {', '.join(unknown)}")
    hit1 = hit3 = 0
    confusion: dict[str, Counter[str]] = {}
    errors = []
    for text, true in labelled:
        preds = model.predict(text, k=3, n_evidence=0)
        best = preds[0].category
        hit1 += best == true
        hit3 += any(p.category == true for p in preds)
        confusion.setdefault(true, Counter())[best] += 1
        if best != true:
            errors.append((text, true, best))
    n = len(labelled)
    return Evaluation(n, hit1 / n, hit3 / n, confusion, tuple(errors))


def format_evaluation(ev: Evaluation, max_confusions: int = 15) -> str:
    """A plain-text report: accuracy, top-3 accuracy, accuracy by category and the most frequent confusions."""
    lines = [
        f"sentences      {ev.n}",
        f"accuracy       {ev.accuracy:.1%}",
        f"top-3 accuracy {ev.top3_accuracy:.1%}",
        "",
        "by category (n, accuracy, most frequent wrong guess):",
    ]
    width = max(len(c) for c in ev.confusion) if ev.confusion else 0
    for cat, (n, acc) in sorted(ev.per_category().items(), key=lambda kv: (kv[1][1], kv[0])):
        wrong = [(p, k) for p, k in ev.confusion[cat].most_common() if p != cat]
        note = f"  -> {wrong[0][0]} x{wrong[0][1]}" if wrong else ""
        lines.append(f"  {cat}{'　' * (width - len(cat))} {n:4d} {acc:7.1%}{note}")
    pairs = Counter({(t, p): k for t, row in ev.confusion.items() for p, k in row.items() if p != t})
    if pairs:
        lines += ["", "confusions (true -> predicted):"]
        lines += [f"  {t} -> {p}: {k}" for (t, p), k in pairs.most_common(max_confusions)]
    return "\n".join(lines)


def save_model(model: TextClassifier, path: str | Path) -> None:
    """Write a trained model to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, model.to_bytes())


def model_path(data_dir: str | Path) -> Path:
    """Where the trained model lives under the settings' ``data_dir``."""
    return Path(data_dir) / MODEL_FILENAME


@dataclass(frozen=True)
class Suggestion:
    """Everything suggested for one transcript, for the operator to accept or correct."""

    categories: tuple[Prediction, ...]
    location: Location
    urgency: UrgencyResult
    autofill: AutoFill

    @property
    def category(self) -> Prediction:
        return self.categories[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for the ticket's stored suggestion and the console's API)."""
        out = asdict(self)
        out["urgency"]["level"] = self.urgency.level.name.lower()
        for hit in out["urgency"]["hits"]:
            hit["level"] = hit["level"].name.lower() if hasattr(hit["level"], "name") else hit["level"]
        out["urgency"]["transfer_now"] = self.urgency.transfer_now
        out["urgency"]["reasons"] = list(self.urgency.reasons)
        return out


@dataclass
class Dispatcher:
    """A trained classifier plus the gazetteer: turns a transcript into a :class:`Suggestion`."""

    model: TextClassifier
    gazetteer: Gazetteer = field(default_factory=default_gazetteer)

    @classmethod
    def load_or_train(cls, path: str | Path, catalogue: DispatchCatalogue | None = None) -> Dispatcher:
        """Load the model at ``path``; when there is none, train one on the catalogue and save it there."""
        path = Path(path)
        catalogue = catalogue or load_dispatch_catalogue()
        if path.exists():
            model = TextClassifier.load(path)
            if model.meta.get("catalogue") != catalogue.fingerprint():
                log.warning("dispatch model %s was trained on another catalogue: run `ivr dispatch retrain`", path)
            return cls(model)
        log.info("no dispatch model at %s: training one from the catalogue", path)
        model = retrain(catalogue)
        save_model(model, path)
        return cls(model)

    def suggest(self, transcript: str) -> Suggestion:
        """Top-three categories, district and area, urgency and the caller's details of ``transcript``.

        The caller's name, number and address are cut out before classification: they say nothing about the
        category and would only add noise.
        """
        fill = extract_autofill(transcript, self.gazetteer)
        return Suggestion(
            categories=tuple(self.model.predict(complaint_text(transcript, fill), k=3)),
            location=self.gazetteer.locate(transcript),
            urgency=detect_urgency(transcript),
            autofill=fill,
        )


def complaint_text(transcript: str, fill: AutoFill) -> str:
    """The transcript without the spans of the auto-filled name, number and address."""
    spans = sorted(
        (f.evidence.start, f.evidence.end) for f in (fill.name, fill.phone, fill.address) if f is not None
    )
    out, pos = [], 0
    for start, end in spans:
        if start >= pos:
            out.append(transcript[pos:start])
            pos = end
    out.append(transcript[pos:])
    return " ".join(p for p in out if p.strip())
