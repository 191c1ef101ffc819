"""A supervisor's edit of one knowledge-base entry, written back to its file (the files stay the source of truth).

`save_entry` changes the edited fields of one entry in the text of its file: the other entries, the other fields,
the comments and the layout stay as they are. The whole knowledge base is checked with the new text in place, as the
loader checks it, and only a good edit is written: the previous version of the file is kept under `.history/`, the
new one replaces the file atomically and a line of `.history/audit.jsonl` says who changed which fields, and when.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ivr.kb.loader import check_texts, read_texts
from ivr.kb.model import KbError
from ivr.storage import write_atomic

__all__ = ["save_entry", "entry_history", "file_version", "AuditLine", "KbConflict", "EDITABLE", "HISTORY", "AUDIT"]

EDITABLE = ("spoken", "text", "questions", "status", "expires")
HISTORY = ".history"
AUDIT = "audit.jsonl"
_STAMPED = {"spoken", "text", "status", "expires"}  # the facts a supervisor vouches for when saving a checked entry
_lock = threading.Lock()


class KbConflict(KbError):
    """An edit of a file that was changed since the editor opened it."""


@dataclass(frozen=True)
class AuditLine:
    """One saved edit: who, when, which entry of which file, the fields changed and the previous version kept."""

    at: datetime
    user: str
    file: str
    entry: str
    fields: tuple[str, ...]
    previous: str  # the previous version, relative to the knowledge-base folder


def file_version(path: Path) -> str:
    """The SHA-256 of a file's bytes: the version an editor saw, for `save_entry(base=...)`."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_entry(directory: str | Path, entry_id: str, fields: Mapping[str, Any], user: str, *,
               base: str | None = None, now: datetime | None = None) -> Path:
    """Write the entry's file with `fields` changed (a subset of `EDITABLE`); the path written, or the path
    untouched when nothing changes. `KbError` naming file, entry and reason, and nothing written, when a field is
    wrong, the knowledge base would not load with the edit, or the file is no longer version `base`. An entry saved
    as checked is stamped `checked_on` today and `checked_by` the user when its facts or status changed."""
    directory = Path(directory)
    now = now or datetime.now(timezone.utc)
    with _lock:
        texts = read_texts(directory)
        path = _file_of(directory, texts, entry_id)
        name = f"{directory.name}/{path.name}"
        old = texts[path]
        if base is not None and hashlib.sha256(old).hexdigest() != base:
            raise KbConflict(f"{name}: {entry_id}: the file was changed since you opened the entry; open it again")
        values = _values(name, entry_id, fields)
        text = old.decode("utf-8")
        current = _current(text, entry_id)
        changed = [k for k, v in values.items() if current.get(k) != v]
        if not changed:
            return path
        if values.get("status", current.get("status")) == "checked" and _STAMPED & set(changed):
            values.update(checked_on=now.date(), checked_by=user)
        new = _replace_fields(text, entry_id, values).encode("utf-8")
        named = {Path(directory.name, p.name): (new if p == path else t) for p, t in texts.items()}
        errors = [f for f in check_texts(named)[1] if f.level == "error"]
        if errors:
            raise KbError(errors)
        previous = directory / HISTORY / path.stem / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}.yaml"
        previous.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(previous, old)
        try:
            write_atomic(path, new)
        except BaseException:
            previous.unlink(missing_ok=True)
            raise
        line = {"at": now.isoformat(), "user": user, "file": path.name, "entry": entry_id, "fields": changed,
                "previous": str(previous.relative_to(directory))}
        with open(directory / HISTORY / AUDIT, "a", encoding="utf-8") as audit:
            audit.write(json.dumps(line, ensure_ascii=False) + "\n")
        return path


def entry_history(directory: str | Path, entry_id: str) -> list[AuditLine]:
    """The saved edits of one entry, newest first."""
    log = Path(directory) / HISTORY / AUDIT
    if not log.is_file():
        return []
    lines = []
    for raw in log.read_text(encoding="utf-8").splitlines():
        item = json.loads(raw)
        if item["entry"] == entry_id:
            lines.append(AuditLine(datetime.fromisoformat(item["at"]), item["user"], item["file"], item["entry"],
                                   tuple(item["fields"]), item["previous"]))
    return lines[::-1]


def _file_of(directory: Path, texts: Mapping[Path, bytes], entry_id: str) -> Path:
    for path, data in texts.items():
        try:
            _entry_node(data.decode("utf-8"), entry_id)
        except (KeyError, UnicodeDecodeError, yaml.YAMLError):
            continue
        return path
    raise KbError(f"{directory.name}: {entry_id}: no such entry")


def _values(name: str, entry_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The edited fields as they go into the file; KbError naming the first wrong one."""
    def bad(reason: str) -> KbError:
        return KbError(f"{name}: {entry_id}: {reason}")

    values: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in EDITABLE:
            raise bad(f"`{key}` cannot be edited here (only {', '.join(EDITABLE)})")
        if key in ("spoken", "text"):
            if not isinstance(value, str) or not value.strip():
                raise bad(f"`{key}` must be text")
            values[key] = "\n".join(line.rstrip() for line in value.strip().splitlines())  # a browser's CRLF too
        elif key == "questions":
            if not isinstance(value, Sequence) or isinstance(value, str) or not all(isinstance(q, str) for q in value):
                raise bad("`questions` must be a list of texts")
            values[key] = [q.strip() for q in value if q.strip()]
            if not values[key]:
                raise bad("missing `questions`")
        elif key == "status":
            if value not in ("checked", "unverified"):
                raise bad(f"status {value!r} is not checked or unverified")
            values[key] = value
        else:
            values[key] = _day(bad, value)
    return values


def _day(bad: Any, value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise bad(f"`expires` {value!r} is not a date (YYYY-MM-DD)") from None


def _entry_node(text: str, entry_id: str) -> yaml.MappingNode:
    """The entry's node in the file's YAML, with its marks (KeyError if the file has no such entry)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "entries" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    if isinstance(item, yaml.MappingNode) and any(
                            k.value == "id" and getattr(v, "value", None) == entry_id for k, v in item.value):
                        return item
    raise KeyError(entry_id)


def _current(text: str, entry_id: str) -> dict[str, Any]:
    """The entry's editable fields as the file has them now."""
    item = _entry_node(text, entry_id)
    loader = yaml.SafeLoader("")
    try:
        found = {k.value: loader.construct_object(v, deep=True) for k, v in item.value if k.value in EDITABLE}
    finally:
        loader.dispose()
    if isinstance(found.get("spoken"), str):
        found["spoken"] = found["spoken"].strip()
    if isinstance(found.get("text"), str):
        found["text"] = found["text"].strip()
    if isinstance(found.get("expires"), str):
        found["expires"] = _day(KbError, found["expires"])
    return found


def _replace_fields(text: str, entry_id: str, values: Mapping[str, Any]) -> str:
    """The file's text with these fields of the entry replaced (None removes a field, a new one is added last)."""
    item = _entry_node(text, entry_id)
    lines = text.splitlines(keepends=True)
    indent = item.start_mark.column
    pairs = item.value
    spans: dict[str, tuple[int, int]] = {}
    for i, (key, value) in enumerate(pairs):
        end = pairs[i + 1][0].start_mark.line if i + 1 < len(pairs) else _end_line(value)
        while end > key.start_mark.line + 1 and not lines[end - 1].strip():
            end -= 1  # blank lines after a value stay where they are
        spans[key.value] = (key.start_mark.line, end)
    last = max(end for _, end in spans.values())
    first_line = item.start_mark.line
    edits: list[tuple[int, int, str]] = []
    added = ""
    for key, value in values.items():
        block = "" if value is None else _dump(key, value, indent)
        if key in spans:
            start, end = spans[key]
            if start == first_line:  # the entry's first field shares its line with the list's dash
                block = lines[start][:indent] + block[indent:] if block else lines[start][:indent] + "\n"
            edits.append((start, end, block))
        elif value is not None:
            added += block
    if added:
        edits.append((last, last, added))
    for start, end, block in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:end] = [block]
    return "".join(lines)


def _end_line(node: yaml.Node) -> int:
    """The line after a value's last line."""
    mark = node.end_mark
    return mark.line + 1 if mark.column > 0 else mark.line


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as the files write them


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else ">" if len(value) > 40 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _dump(key: str, value: Any, indent: int) -> str:
    out = yaml.dump({key: value}, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10 ** 6,
                    default_flow_style=False)
    return "".join(" " * indent + line for line in out.splitlines(keepends=True))
