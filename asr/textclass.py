"""A small offline text classifier: jieba words + character n-grams, TF-IDF, softmax regression in numpy.

It suggests a ticket's dispatch category (`ivr.triage`) and a caller's menu intent from their own words
(`asr.meaning`). A model is small (a few hundred kilobytes as a compressed ``.npz``), trains in seconds, and
explains each prediction with the terms that weighed most.
"""
from __future__ import annotations

import io
import json
import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pypinyin import Style, lazy_pinyin

from .errors import AsrError

__all__ = [
    "ClassifierError",
    "Evidence",
    "Prediction",
    "TrainConfig",
    "TextClassifier",
    "features",
    "normalise",
    "tokenizer",
]

log = logging.getLogger(__name__)

MODEL_FORMAT = "ivr-dispatch-model"
MODEL_VERSION = 1

# Words that say nothing about the category; TF-IDF would damp them anyway, dropping them keeps evidence clean.
_STOPWORDS = frozenset(
    "的 了 我 你 他 她 它 我们 你们 他们 是 在 有 就 都 也 还 和 跟 把 被 给 让 吗 呢 吧 啊 呀 哦 嗯 那 这 那个 这个 就是"
    " 一下 一个 然后 还是 说 要 想 能 会 可以 不 没 没有 好 很 太 特别 怎么 什么 哪里 为什么 您好 你好 喂 请问 问 反映"
    " 我要 我想 一直 现在 已经 又 再 都是 着 过 得 地 之 个 啦 嘛".split()
)
_KEEP = re.compile(r"[\u3400-\u9fff0-9a-z]+")


class ClassifierError(AsrError, ValueError):
    """A model file that cannot be used or training data that cannot train a model."""


@dataclass(frozen=True)
class Evidence:
    """A term of the transcript and how much it weighed for the suggested category."""

    term: str
    weight: float


@dataclass(frozen=True)
class Prediction:
    """One suggested category with its department, probability and the terms that weighed most."""

    category: str
    department: str
    score: float
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the features and the optimiser."""

    char_ngrams: tuple[int, ...] = (1, 2)
    pinyin_ngrams: tuple[int, ...] = ()  # n-grams of toneless syllables: what a recogniser's homophones share
    l2: float = 1e-4
    epochs: int = 200
    learning_rate: float = 0.5
    min_df: int = 1
    tolerance: float = 1e-3


_jieba_lock = threading.Lock()
_jieba_tokenizer = None


def tokenizer() -> Any:
    """The process' one jieba tokenizer, initialised on first use."""
    global _jieba_tokenizer
    with _jieba_lock:
        if _jieba_tokenizer is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            tok.initialize()
            _jieba_tokenizer = tok
        return _jieba_tokenizer


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, and only Han characters, letters and digits kept (no spaces)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(_KEEP.findall(text))


def features(text: str, char_ngrams: Sequence[int] = (1, 2), pinyin_ngrams: Sequence[int] = ()) -> Counter[str]:
    """Counts of the features of one transcript: ``w:`` jieba words, ``c:`` character n-grams and ``p:`` n-grams
    of toneless pinyin syllables (按键 and 案件 share ``p:an jian``)."""
    clean = normalise(text)
    counts: Counter[str] = Counter()
    if not clean:
        return counts
    for word in tokenizer().lcut(clean, HMM=True):
        if word and word not in _STOPWORDS:
            counts["w:" + word] += 1
    for n in char_ngrams:
        for i in range(len(clean) - n + 1):
            gram = clean[i : i + n]
            if n == 1 and gram in _STOPWORDS:
                continue
            counts["c:" + gram] += 1
    if pinyin_ngrams:
        syllables = lazy_pinyin(clean, style=Style.NORMAL, errors="ignore")
        for n in pinyin_ngrams:
            for i in range(len(syllables) - n + 1):
                counts["p:" + " ".join(syllables[i : i + n])] += 1
    return counts


class _Sparse:
    """A sparse matrix (coordinate form) with the two products softmax regression needs, done as segment sums."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, n_cols: int) -> None:
        self.n_rows, self.n_cols = n_rows, n_cols
        by_row = np.lexsort((cols, rows))
        self.r_rows, self.r_cols, self.r_vals = rows[by_row], cols[by_row], vals[by_row]
        self.r_ids, self.r_starts = np.unique(self.r_rows, return_index=True)
        by_col = np.lexsort((rows, cols))
        self.c_rows, self.c_cols, self.c_vals = rows[by_col], cols[by_col], vals[by_col]
        self.c_ids, self.c_starts = np.unique(self.c_cols, return_index=True)

    def dot(self, w: np.ndarray) -> np.ndarray:
        out = np.zeros((self.n_rows, w.shape[1]))
        if len(self.r_vals):
            out[self.r_ids] = np.add.reduceat(self.r_vals[:, None] * w[self.r_cols], self.r_starts, axis=0)
        return out

    def tdot(self, g: np.ndarray) -> np.ndarray:
        out = np.zeros((self.n_cols, g.shape[1]))
        if len(self.c_vals):
            out[self.c_ids] = np.add.reduceat(self.c_vals[:, None] * g[self.c_rows], self.c_starts, axis=0)
        return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e: np.ndarray = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


@dataclass
class TextClassifier:
    """A trained classifier: vocabulary, IDF weights, and the weight matrix of a softmax regression."""

    vocab: dict[str, int]
    idf: np.ndarray
    weights: np.ndarray  # (n_features, n_classes)
    bias: np.ndarray  # (n_classes,)
    classes: tuple[str, ...]
    departments: tuple[str, ...]
    config: TrainConfig = field(default_factory=TrainConfig)
    meta: dict[str, object] = field(default_factory=dict)
    _terms: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    # ----------------------------------------------------------------------------------------------- training
    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        departments: dict[str, str],
        sample_weights: Sequence[float] | None = None,
        config: TrainConfig | None = None,
    ) -> TextClassifier:
        """Learn from texts and their category labels; ``departments`` maps every category to its department.

        Every category of ``departments`` becomes a class, even one without training texts (it then only wins
        on its bias, which is low), so the classes of a model always match its catalogue.
        """
        config = config or TrainConfig()
        if len(texts) != len(labels):
            raise ClassifierError(f"{len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise ClassifierError("no training texts")
        classes = tuple(departments)
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({lab for lab in labels if lab not in index})
        if unknown:
            raise ClassifierError(f"labels not in the catalogue: {', '.join(unknown)}")
        weights_in = np.ones(len(texts)) if sample_weights is None else np.asarray(sample_weights, float)
        if weights_in.shape != (len(texts),) or (weights_in <= 0).any():
            raise ClassifierError("sample_weights must be one positive number per text")

        counted = [features(t, config.char_ngrams, config.pinyin_ngrams) for t in texts]
        df: Counter[str] = Counter()
        for c in counted:
            df.update(c.keys())
        terms = sorted(t for t, n in df.items() if n >= config.min_df)
        vocab = {t: i for i, t in enumerate(terms)}
        n_docs = len(texts)
        idf = np.array([math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in terms])
        model = cls(
            vocab=vocab,
            idf=idf,
            weights=np.zeros((len(terms), len(classes))),
            bias=np.zeros(len(classes)),
            classes=classes,
            departments=tuple(departments[c] for c in classes),
            config=config,
        )
        x = model._matrix(counted)
        y = np.zeros((n_docs, len(classes)))
        y[np.arange(n_docs), [index[lab] for lab in labels]] = 1.0
        model._optimise(x, y, weights_in / weights_in.sum())
        model.meta = {"n_train": n_docs, "n_features": len(terms)}
        log.info("trained a text classifier: %d texts, %d classes, %d features", n_docs, len(classes), len(terms))
        return model

    def _vector(self, counts: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(self.vocab[t], 1.0 + math.log(n)) for t, n in counts.items() if t in self.vocab]
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cols = np.array([p[0] for p in pairs], dtype=np.int64)
        vals = np.array([p[1] for p in pairs]) * self.idf[cols]
        return cols, vals / np.linalg.norm(vals)

    def _matrix(self, counted: Sequence[Counter[str]]) -> _Sparse:
        rows, cols, vals = [], [], []
        for r, counts in enumerate(counted):
            c, v = self._vector(counts)
            rows.append(np.full(len(c), r, dtype=np.int64))
            cols.append(c)
            vals.append(v)
        return _Sparse(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), len(counted), len(self.vocab))

    def _optimise(self, x: _Sparse, y: np.ndarray, w: np.ndarray) -> None:
        """Full-batch Adam on the weighted cross-entropy plus an L2 penalty (deterministic).

        Stops early when the objective improved by less than ``config.tolerance`` (relative) over ten steps.
        """
        cfg = self.config
        params = [self.weights, self.bias]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        b1, b2, eps = 0.9, 0.999, 1e-8
        previous = math.inf
        step = 0
        for step in range(1, cfg.epochs + 1):
            p = _softmax(x.dot(self.weights) + self.bias)
            g = (p - y) * w[:, None]
            if step % 10 == 0:
                objective = -float((w * np.log(np.maximum((p * y).sum(axis=1), 1e-12))).sum())
                objective += 0.5 * cfg.l2 * float((self.weights**2).sum())
                if previous - objective < cfg.tolerance * abs(previous):
                    break
                previous = objective
            grads = [x.tdot(g) + cfg.l2 * self.weights, g.sum(axis=0)]
            for i, (param, grad) in enumerate(zip(params, grads)):
                m[i] = b1 * m[i] + (1 - b1) * grad
                v[i] = b2 * v[i] + (1 - b2) * grad * grad
                mhat = m[i] / (1 - b1**step)
                vhat = v[i] / (1 - b2**step)
                param -= cfg.learning_rate * mhat / (np.sqrt(vhat) + eps)
        log.debug("training stopped after %d steps, objective %.5f", step, previous)

    # ---------------------------------------------------------------------------------------------- inference
    def predict(self, text: str, k: int = 3, n_evidence: int = 5) -> list[Prediction]:
        """The ``k`` most likely categories, best first, each with up to ``n_evidence`` weighing terms."""
        cols, vals = self._vector(features(text, self.config.char_ngrams, self.config.pinyin_ngrams))
        logits = vals @ self.weights[cols] + self.bias if len(cols) else self.bias.copy()
        probs = _softmax(logits[None, :])[0]
        order = np.argsort(-probs, kind="stable")[:k]
        out = []
        for c in order:
            contrib = vals * self.weights[cols, c] if len(cols) else np.zeros(0)
            out.append(
                Prediction(
                    category=self.classes[c],
                    department=self.departments[c],
                    score=float(probs[c]),
                    evidence=self._evidence(cols, contrib, n_evidence),
                )
            )
        return out

    def _evidence(self, cols: np.ndarray, contrib: np.ndarray, n: int) -> tuple[Evidence, ...]:
        """Surface terms by summed weight (a word and the same n-gram count once); terms of two or more
        characters first, single characters only to fill up; a term inside a longer chosen one is left out."""
        if n <= 0 or not len(cols):
            return ()
        if len(self._terms) != len(self.vocab):
            self._terms = list(self.vocab)  # insertion order is the column order
        weight: dict[str, float] = {}
        for j in np.flatnonzero(contrib > 0):
            term = self._terms[cols[j]][2:]
            weight[term] = weight.get(term, 0.0) + float(contrib[j])
        ranked = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))
        chosen: list[Evidence] = []
        for long_pass in (True, False):
            for term, w in ranked:
                if len(chosen) >= n:
                    break
                if (len(term) >= 2) != long_pass or any(term in e.term for e in chosen):
                    continue
                chosen = [e for e in chosen if e.term not in term]
                chosen.append(Evidence(term, round(w, 4)))
        return tuple(chosen)

    # ------------------------------------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """The model as a compressed ``.npz`` file's bytes (what :meth:`load` reads)."""
        header = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "config": {
                "char_ngrams": list(self.config.char_ngrams),
                "pinyin_ngrams": list(self.config.pinyin_ngrams),
                "l2": self.config.l2,
                "epochs": self.config.epochs,
                "learning_rate": self.config.learning_rate,
                "min_df": self.config.min_df,
                "tolerance": self.config.tolerance,
            },
            "meta": self.meta,
        }
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            header=np.array(json.dumps(header, ensure_ascii=False)),
            vocab=np.array(list(self.vocab), dtype=str),
            idf=self.idf.astype(np.float32),
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
            classes=np.array(self.classes, dtype=str),
            departments=np.array(self.departments, dtype=str),
        )
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> TextClassifier:
        """Read a model file made of :meth:`to_bytes`; raise ClassifierError with the reason if it is not one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            raise ClassifierError(f"{path}: model file not found") from None
        except (OSError, ValueError) as exc:
            raise ClassifierError(f"{path}: not a dispatch model ({exc})") from None
        for key in ("header", "vocab", "idf", "weights", "bias", "classes", "departments"):
            if key not in data:
                raise ClassifierError(f"{path}: not a dispatch model (missing {key})")
        header = json.loads(str(data["header"]))
        if header.get("format") != MODEL_FORMAT:
            raise ClassifierError(f"{path}: not a dispatch model (format {header.get('format')!r})")
        if header.get("version") != MODEL_VERSION:
            raise ClassifierError(
                f"{path}: model version {header.get('version')} is not {MODEL_VERSION}; run `ivr dispatch retrain`"
            )
        cfg = header["config"]
        weights = data["weights"].astype(np.float64)
        n_feat, n_cls = weights.shape
        if len(data["vocab"]) != n_feat or len(data["classes"]) != n_cls or len(data["departments"]) != n_cls:
            raise ClassifierError(f"{path}: not a dispatch model (inconsistent shapes)")
        return cls(
            vocab={str(t): i for i, t in enumerate(data["vocab"])},
            idf=data["idf"].astype(np.float64),
            weights=weights,
            bias=data["bias"].astype(np.float64),
            classes=tuple(str(c) for c in data["classes"]),
            departments=tuple(str(d) for d in data["departments"]),
            config=TrainConfig(
                char_ngrams=tuple(cfg["char_ngrams"]),
                pinyin_ngrams=tuple(cfg.get("pinyin_ngrams", ())),
                l2=cfg["l2"],
                epochs=cfg["epochs"],
                learning_rate=cfg["learning_rate"],
                min_df=cfg["min_df"],
                tolerance=cfg.get("tolerance", TrainConfig.tolerance),
            ),
            meta=dict(header.get("meta", {})),
        )
