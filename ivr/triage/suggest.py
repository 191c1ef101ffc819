"""Dispatch suggestions as stored on a ticket: the JSON form of ivr.triage.dispatch's Suggestion, and the suggester
(transcript text in, that JSON out) backed by the trained model, which the ticket store is given."""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ivr.triage.dispatch import Dispatcher, model_path

__all__ = ["suggestion_dict", "dispatch_suggester"]


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.name.lower()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 4)
    return obj


def suggestion_dict(s: Any, model: str = "") -> dict[str, Any]:
    """A dispatch ``Suggestion`` (ivr.triage.dispatch) as the JSON stored on the ticket.

    Top-level ``category``/``department``/``district``/``urgency_level`` are the values prefilled for the
    operator; ``urgency_ask`` names a hazard the words only came close to (the flow asks the caller);
    ``categories`` keeps the top three with scores and evidence terms, ``urgency`` every hit with
    its span, ``autofill`` the caller's details with their evidence.
    """
    best = s.categories[0] if s.categories else None
    return {
        "category": best.category if best else "",
        "department": best.department if best else "",
        "district": s.location.district or "",
        "area": s.location.area or "",
        "urgency_level": s.urgency.level.name.lower(),
        "transfer_now": bool(s.urgency.transfer_now),
        "urgency_reasons": list(s.urgency.reasons),
        "urgency_ask": s.urgency.ask,
        "categories": _jsonable(list(s.categories)),
        "location": _jsonable(s.location),
        "urgency": _jsonable(s.urgency),
        "autofill": _jsonable(s.autofill),
        "model": model,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def dispatch_suggester(data_dir: str | Path) -> Callable[[str], dict[str, Any]]:
    """A suggester backed by the trained dispatch model under ``data_dir`` (trained from the catalogue the
    first time)."""
    path = model_path(data_dir)
    dispatcher = Dispatcher.load_or_train(path)
    return lambda transcript: suggestion_dict(dispatcher.suggest(transcript), model=path.name)
