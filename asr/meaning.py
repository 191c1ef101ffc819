"""Menu intents from meaning: a small learned model per menu family beside the keyword/pinyin matcher.

A family (main, consult, elderly ...) is a set of intents with caller phrasings to learn from
(``asr/data/intents.yaml``); its model is the same kind of offline text classifier as dispatch
(`asr.textclass`: jieba words + character n-grams), trained in well under a second when first used, and it
explains each guess by the terms that weighed most. A word right after 不要/不用/不想/别/不是 is left out of what the
model reads, so 不要投诉 is not a complaint.

`understand` combines the two, in this order:

1. a keyword match that is most of the utterance (score >= `STRONG_KEYWORD`: 我要投诉, 转人工) wins;
2. else the model, when it is sure (probability >= `SURE`) of an intent the menu accepts (我上次反映的事怎么样了:
   progress, though 反映 is a complaint keyword);
3. else a keyword match above the menu's threshold;
4. else no match: when both are unsure, it stays a no-match (and a sure "none" never becomes a choice).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from .errors import AsrError
from .intents import Evidence, IntentMatch, Menu, NoMatch
from .textclass import TextClassifier, TrainConfig

__all__ = ["IntentFamilyError", "Guess", "IntentModel", "load_families", "family_model", "family_names",
           "understand", "without_negated", "NONE", "SURE", "STRONG_KEYWORD", "DEFAULT_FAMILIES"]

logger = logging.getLogger(__name__)

DEFAULT_FAMILIES = Path(__file__).resolve().parent / "data" / "intents.yaml"
NONE = "none"  # the model's class for what is not a choice of the menu
SURE = 0.5
STRONG_KEYWORD = 0.9
_NEGATED = re.compile(r"(不要|不用|不想|不是|别)(?:再|去|给我)?([\u3400-\u9fff]{2})")


class IntentFamilyError(AsrError, ValueError):
    """A phrasings file that cannot train intent models, or a family it does not have."""


@dataclass(frozen=True)
class Guess:
    """The model's best intent for a transcript, its probability and the terms that weighed most."""

    intent: str
    score: float
    evidence: tuple[str, ...] = ()


def without_negated(text: str) -> str:
    """The transcript without the two characters after a negator (不要投诉 -> 不要), which it says are not wanted."""
    return _NEGATED.sub(r"\1", text)


class IntentModel:
    """One family's learned intents."""

    def __init__(self, family: str, classifier: TextClassifier) -> None:
        self.family = family
        self.classifier = classifier

    @property
    def intents(self) -> tuple[str, ...]:
        return self.classifier.classes

    @classmethod
    def train(cls, family: str, phrasings: Mapping[str, Sequence[str]]) -> IntentModel:
        """Learn `family` from intent -> phrasings."""
        texts = [without_negated(p) for phrases in phrasings.values() for p in phrases]
        labels = [intent for intent, phrases in phrasings.items() for _ in phrases]
        classifier = TextClassifier.fit(texts, labels, {intent: "" for intent in phrasings},
                                        config=TrainConfig(char_ngrams=(1, 2), pinyin_ngrams=(1, 2), l2=1e-4))
        return cls(family, classifier)

    def guess(self, transcript: str) -> Guess:
        """The most likely intent of `transcript` ("none" when it names no choice)."""
        best = self.classifier.predict(without_negated(transcript), k=1, n_evidence=3)[0]
        return Guess(best.category, round(best.score, 4), tuple(e.term for e in best.evidence))


def load_families(path: Path = DEFAULT_FAMILIES) -> dict[str, dict[str, tuple[str, ...]]]:
    """Family -> intent -> phrasings, the `common` intents added to every family."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntentFamilyError(f"{path}: intent phrasings not found") from None
    except yaml.YAMLError as exc:
        raise IntentFamilyError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("families"), dict) or not raw["families"]:
        raise IntentFamilyError(f"{path}: expected a mapping with a 'families' mapping")
    common = raw.get("common") or {}
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for family, intents in raw["families"].items():
        if not isinstance(intents, dict):
            raise IntentFamilyError(f"{path}: family {family!r} is not a mapping of intent -> phrasings")
        merged = {**intents, **common}
        for intent, phrases in merged.items():
            if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) and p for p in phrases):
                raise IntentFamilyError(f"{path}: family {family!r}: intent {intent!r} needs a list of phrasings")
        out[str(family)] = {str(i): tuple(p) for i, p in merged.items()}
    return out


@cache
def _families(path: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    return load_families(path)


def family_names(path: Path = DEFAULT_FAMILIES) -> tuple[str, ...]:
    """The families the phrasings file defines."""
    return tuple(_families(path))


@cache
def family_model(family: str, path: Path = DEFAULT_FAMILIES) -> IntentModel:
    """The trained model of `family` (trained once per process, on first use)."""
    families = _families(path)
    if family not in families:
        raise IntentFamilyError(f"unknown intent family {family!r}; known: {', '.join(families)}")
    model = IntentModel.train(family, families[family])
    logger.info("intent family %s: %d intents, %d phrasings", family, len(model.intents),
                sum(len(p) for p in families[family].values()))
    return model


def understand(menu: Menu, model: IntentModel | None, transcript: str) -> IntentMatch | NoMatch:
    """The choice a transcript names in `menu`, by keywords and, with a model, by meaning (see the module's rule)."""
    keyword = menu.match_text(transcript)
    if model is None or (isinstance(keyword, IntentMatch) and keyword.score >= STRONG_KEYWORD):
        return keyword
    text = keyword.transcript
    if not text:
        return keyword
    accepted = {o.intent for o in menu.options} | set(menu.builtins)
    guess = model.guess(text)
    if guess.score >= SURE and guess.intent in accepted:
        key = next((o.key for o in menu.options if o.intent == guess.intent), None)
        in_text = [t for t in guess.evidence if t in text]  # words of the transcript rather than their pinyin
        matched = (in_text or list(guess.evidence) or [""])[0]
        start = max(text.find(matched), 0)
        evidence = Evidence("meaning", matched, guess.intent, start, start + len(matched), guess.score)
        logger.debug("intent %s by meaning %.2f from %s", guess.intent, guess.score, guess.evidence)
        return IntentMatch(guess.intent, guess.score, evidence, key=key, transcript=text)
    return keyword
