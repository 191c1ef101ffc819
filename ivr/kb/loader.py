"""Read the knowledge base's files (`kb/*.yaml`) into typed entries and check them.

`check_texts` is the one checker: every finding names file, entry and reason (`kb/heating.yaml: ht_season: spoken
answer is 41 s, over 30 s`). Errors refuse the load (`load_kb` raises `KbError`); warnings (unverified, expired or
expiring, few question forms, digits in a spoken answer) are for `ivr kb check` and the operators.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from asr.text import to_halfwidth
from ivr.kb.model import Entry, Finding, KbError, Level, Source, Status
from ivr.kb.search import KnowledgeBase

__all__ = ["load_kb", "check_kb", "check_texts", "read_texts", "kb_from_texts", "digest", "spoken_seconds", "question_key",
           "MAX_SPOKEN_S", "EXPIRING_DAYS"]

MAX_SPOKEN_S = 30
SYLLABLES_PER_S = 4.0  # an unhurried voice an elderly caller follows: 120 characters in 30 s
EXPIRING_DAYS = 30
QUESTIONS_WANTED = (3, 6)
_ID = re.compile(r"[a-z0-9_]+")
_SYLLABLE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff0-9A-Za-z]")
_DIGITS = re.compile(r"[0-9０-９]+")
_NOT_WORD = re.compile(r"[\W_]+")
_FILE_KEYS = {"topic", "department", "entries"}
_REQUIRED = ("id", "title", "questions", "spoken", "text", "source", "status")
_OPTIONAL = ("synonyms", "department", "checked_on", "checked_by", "expires")
_STATUSES: tuple[Status, ...] = ("checked", "unverified")


def spoken_seconds(text: str) -> int:
    """How long a spoken answer takes, in whole seconds (a syllable for each character, digit or letter)."""
    return math.ceil(len(_SYLLABLE.findall(text)) / SYLLABLES_PER_S)


def question_key(text: str) -> str:
    """A question form as compared for duplicates: half-width, lower case, without spaces or punctuation."""
    return _NOT_WORD.sub("", to_halfwidth(text).lower())


def read_texts(directory: Path) -> dict[Path, bytes]:
    """The knowledge base's files (`*.yaml` directly in the folder), by path; KbError if there are none."""
    if not directory.is_dir():
        raise KbError(f"{directory}: knowledge base folder not found")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise KbError(f"{directory}: no knowledge base files (*.yaml)")
    texts: dict[Path, bytes] = {}
    for path in files:
        try:
            texts[path] = path.read_bytes()
        except OSError as exc:
            raise KbError(f"{path}: cannot read the file ({exc.strerror})") from exc
    return texts


def load_kb(directory: str | Path) -> KnowledgeBase:
    """The knowledge base in a folder; `KbError` naming file, entry and reason if any file has an error."""
    directory = Path(directory)
    return kb_from_texts(directory, read_texts(directory))


def kb_from_texts(directory: Path, texts: Mapping[Path, bytes]) -> KnowledgeBase:
    """The knowledge base of these files (read from `directory`); `KbError` if any has an error."""
    entries, findings = check_texts(texts)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise KbError(errors)
    return KnowledgeBase(tuple(entries), directory, digest(texts))


def check_kb(directory: str | Path, today: date) -> list[Finding]:
    """Every error and warning of the knowledge base in a folder (`ivr kb check`)."""
    directory = Path(directory)
    try:
        texts = read_texts(directory)
    except KbError as exc:
        return [Finding(directory, "", "error", str(exc).removeprefix(f"{directory}: "))]
    return check_texts(texts, today)[1]


def digest(texts: Mapping[Path, bytes]) -> str:
    """The SHA-256 of the files' names and contents: the knowledge base's version."""
    h = hashlib.sha256()
    for path in sorted(texts):
        h.update(path.name.encode() + b"\0" + hashlib.sha256(texts[path]).digest())
    return h.hexdigest()


def check_texts(texts: Mapping[Path, bytes], today: date | None = None) -> tuple[list[Entry], list[Finding]]:
    """The good entries of these files and every finding; date warnings only when `today` is given.

    The console validates an edit with it: the folder's texts with the edited file's new text in place.
    """
    checker = _Checker()
    for path in sorted(texts):
        checker.file(path, texts[path])
    checker.across()
    if today is not None:
        checker.dated(today)
    return checker.entries, checker.findings


class _DupeKeyLoader(yaml.SafeLoader):
    """A safe loader that records keys given twice in one mapping (plain YAML keeps the last silently)."""

    dupes: list[str]


def _mapping(loader: _DupeKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.dupes.append(f"field `{key}` given twice (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_DupeKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _yaml(text: str) -> tuple[Any, list[str]]:
    loader = _DupeKeyLoader(text)
    loader.dupes = []
    try:
        return loader.get_single_data(), loader.dupes
    finally:
        loader.dispose()


class _Invalid(Exception):
    """An entry with an error, already recorded: it is left out."""


@dataclass
class _Where:
    path: Path
    entry: str


class _Checker:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.findings: list[Finding] = []
        self.paths: dict[str, Path] = {}

    def add(self, where: _Where, reason: str, level: Level = "error") -> _Invalid:
        self.findings.append(Finding(where.path, where.entry, level, reason))
        return _Invalid()

    def file(self, path: Path, data: bytes) -> None:
        top = _Where(path, "")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            self.add(top, f"not UTF-8 text (line {line}); save it as UTF-8")
            return
        try:
            raw, dupes = _yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark else ""
            self.add(top, f"not valid YAML{at} ({getattr(exc, 'problem', None) or exc})")
            return
        for dupe in dupes:
            self.add(top, dupe)
        if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list) or not raw["entries"]:
            self.add(top, "a knowledge base file needs `topic` and a list of `entries`")
            return
        for key in sorted(set(map(str, raw)) - _FILE_KEYS):
            self.add(top, f"unknown field `{key}` (expected topic, department, entries)")
        topic = raw.get("topic")
        if not isinstance(topic, str) or not topic.strip():
            self.add(top, "missing `topic`")
            topic = ""
        department = raw.get("department")
        if department is not None and (not isinstance(department, str) or not department.strip()):
            self.add(top, "`department` must be text")
            department = None
        for index, spec in enumerate(raw["entries"], 1):
            try:
                self.entries.append(self.entry(path, index, spec, topic.strip(), department))
            except _Invalid:
                pass

    def entry(self, path: Path, index: int, spec: Any, topic: str, department: str | None) -> Entry:
        if not isinstance(spec, dict):
            raise self.add(_Where(path, f"entry {index}"), "an entry must be a mapping of fields")
        eid = spec.get("id")
        where = _Where(path, eid if isinstance(eid, str) and eid else f"entry {index}")
        if not isinstance(eid, str) or not _ID.fullmatch(eid):
            raise self.add(where, "missing `id`" if eid is None else f"id {eid!r} is not [a-z0-9_]+")
        if eid in self.paths:
            raise self.add(where, f"id used twice (first in {self.paths[eid]})")
        self.paths[eid] = path
        unknown = sorted(set(map(str, spec)) - set(_REQUIRED) - set(_OPTIONAL))
        missing = [key for key in _REQUIRED if spec.get(key) in (None, "", [], {})]
        for key in unknown:
            self.add(where, f"unknown field `{key}`")
        for key in missing:
            self.add(where, f"missing `{key}`")
        if unknown or missing:
            raise _Invalid()
        entry = Entry(
            id=eid,
            title=self.text(where, spec, "title"),
            file=path.stem,
            topic=topic,
            questions=self.texts(where, spec, "questions"),
            synonyms=self.texts(where, spec, "synonyms"),
            spoken=self.text(where, spec, "spoken"),
            text=self.text(where, spec, "text"),
            department=self.department(where, spec.get("department", department)),
            source=self.source(where, spec["source"]),
            status=self.status(where, spec["status"]),
            checked_on=self.day(where, spec, "checked_on"),
            checked_by=self.text(where, spec, "checked_by") if spec.get("checked_by") is not None else None,
            expires=self.day(where, spec, "expires"),
        )
        seconds = spoken_seconds(entry.spoken)
        if seconds > MAX_SPOKEN_S:
            raise self.add(where, f"spoken answer is {seconds} s, over {MAX_SPOKEN_S} s")
        if entry.status == "checked" and entry.checked_on is None:
            raise self.add(where, "`checked_on` is required when status is checked")
        self.warn_style(where, entry)
        return entry

    def text(self, where: _Where, spec: dict[str, Any], key: str) -> str:
        value = spec.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.add(where, f"`{key}` must be text")
        return value.strip()

    def texts(self, where: _Where, spec: dict[str, Any], key: str) -> tuple[str, ...]:
        value = spec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.add(where, f"`{key}` must be a list of texts")
        return tuple(v.strip() for v in value)

    def department(self, where: _Where, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.add(where, "missing `department` (of the entry or of the file)")
        return value.strip()

    def source(self, where: _Where, value: Any) -> Source:
        if not isinstance(value, dict) or not isinstance(value.get("title"), str) or not value["title"].strip():
            raise self.add(where, "`source` needs a `title`")
        unknown = sorted(set(map(str, value)) - {"title", "url"})
        if unknown:
            raise self.add(where, f"unknown field `source.{unknown[0]}`")
        url = value.get("url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            raise self.add(where, f"`source.url` {url!r} is not an http(s) address")
        return Source(value["title"].strip(), url)

    def status(self, where: _Where, value: Any) -> Status:
        for status in _STATUSES:
            if value == status:
                return status
        raise self.add(where, f"status {value!r} is not checked or unverified")

    def day(self, where: _Where, spec: dict[str, Any], key: str) -> date | None:
        value = spec.get(key)
        if isinstance(value, datetime):
            return value.date()  # YAML reads "2026-12-06 10:00" as a timestamp
        if value is None or isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.add(where, f"`{key}` {value!r} is not a date (YYYY-MM-DD)") from None

    def warn_style(self, where: _Where, entry: Entry) -> None:
        low, high = QUESTIONS_WANTED
        if not low <= len(entry.questions) <= high:
            self.add(where, f"{len(entry.questions)} question forms (write {low}-{high})", "warning")
        digits = _DIGITS.findall(entry.spoken)
        if digits:
            self.add(where, f"spoken answer has digits ({', '.join(digits)}): write numbers as they are to be "
                            "heard", "warning")

    def across(self) -> None:
        """Question forms given to two entries (or twice to one)."""
        owner: dict[str, Entry] = {}
        for entry in self.entries:
            mine: set[str] = set()
            for question in entry.questions:
                key = question_key(question)
                first = owner.setdefault(key, entry)
                if first is not entry:
                    self.add(_Where(self.paths[entry.id], entry.id),
                             f"question {question!r} is also a question of {first.id}")
                elif key in mine:
                    self.add(_Where(self.paths[entry.id], entry.id), f"question {question!r} given twice")
                mine.add(key)
        duplicated = {f.entry for f in self.findings if f.reason.startswith("question ")}
        self.entries = [e for e in self.entries if e.id not in duplicated]

    def dated(self, today: date) -> None:
        soon = today + timedelta(days=EXPIRING_DAYS)
        for entry in self.entries:
            where = _Where(self.paths[entry.id], entry.id)
            if entry.expired(today):
                self.add(where, f"expired on {entry.expires}: not spoken", "warning")
            elif entry.expires is not None and entry.expires <= soon:
                self.add(where, f"expires on {entry.expires}, in {(entry.expires - today).days} days", "warning")
            if entry.status == "unverified":
                self.add(where, "unverified: not spoken until a supervisor marks it checked", "warning")
