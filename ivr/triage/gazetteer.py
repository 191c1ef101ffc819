"""Beijing place names in transcripts: district and street/area with the evidence span.

The gazetteer file (``data/gazetteer.tsv``) lists Beijing's 16 districts (full and short names), their street
offices, towns and well-known areas and landmarks (中关村, 望京, 国贸, 回龙观 ...), each mapped to its district or
districts (八里庄 is in both 朝阳 and 海淀). Names that are also common words (平房, 光明, 清水) are marked
``suffix`` and only count before 街道/地区/镇/乡.

Spans are character offsets into the transcript as given: :class:`TextView` removes the spaces Vosk puts between
words and keeps the way back to the original offsets.
"""
from __future__ import annotations

import functools
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError

__all__ = ["GazetteerError", "Span", "TextView", "Place", "PlaceMatch", "Location", "Gazetteer", "DEFAULT_GAZETTEER",
           "default_gazetteer"]

log = logging.getLogger(__name__)

DEFAULT_GAZETTEER = Path(__file__).resolve().parent / "data" / "gazetteer.tsv"
KINDS = ("区", "街道", "地区")
SUFFIXES = ("地区办事处", "街道办事处", "街道办", "街道", "地区", "镇", "乡")
_SPACE = re.compile(r"\s")


class GazetteerError(IvrError, ValueError):
    """A gazetteer file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Span:
    """``transcript[start:end] == text``: where a piece of evidence is in the transcript."""

    start: int
    end: int
    text: str


class TextView:
    """A transcript without whitespace (and with full-width ASCII folded), mapped back to the original offsets."""

    def __init__(self, original: str) -> None:
        self.original = original
        chars: list[str] = []
        offsets: list[int] = []
        for i, ch in enumerate(original):
            if _SPACE.match(ch):
                continue
            chars.append(unicodedata.normalize("NFKC", ch)[:1] or ch)
            offsets.append(i)
        self.text = "".join(chars)
        self._offsets = offsets

    def span(self, start: int, end: int) -> Span:
        """The original span of ``self.text[start:end]`` (``end`` exclusive, ``start < end``)."""
        o_start = self._offsets[start]
        o_end = self._offsets[end - 1] + 1
        return Span(o_start, o_end, self.original[o_start:o_end])


@dataclass(frozen=True)
class Place:
    """One gazetteer entry."""

    name: str
    districts: tuple[str, ...]
    kind: str  # 区, 街道 or 地区
    suffix_only: bool = False


@dataclass(frozen=True)
class PlaceMatch:
    """A place found in a transcript; ``span`` covers the name and its suffix (望京街道)."""

    place: Place
    span: Span
    clean_start: int  # offsets in the TextView's text, for extractors built on top
    clean_end: int


@dataclass(frozen=True)
class Location:
    """The district and street/area of a transcript, with evidence.

    ``district`` is None when no district is named and the area is in several (``candidates`` lists them);
    ``consistent`` is False when the named district does not contain the named area.
    """

    district: str | None = None
    area: str | None = None
    district_evidence: Span | None = None
    area_evidence: Span | None = None
    candidates: tuple[str, ...] = ()
    consistent: bool = True


class Gazetteer:
    """Longest-match lookup of place names."""

    def __init__(self, places: list[Place]) -> None:
        self.places = {p.name: p for p in places}
        self._by_first: dict[str, list[Place]] = {}
        for p in sorted(places, key=lambda p: -len(p.name)):
            self._by_first.setdefault(p.name[0], []).append(p)
        self.districts = tuple(sorted({p.districts[0] for p in places if p.kind == "区"}))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_GAZETTEER) -> Gazetteer:
        """Read a gazetteer TSV: ``name<TAB>districts<TAB>kind<TAB>match`` (a header line and # comments)."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise GazetteerError(f"{path}: gazetteer file not found") from None
        places: list[Place] = []
        seen: set[str] = set()
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#") or line.startswith("name\t"):
                continue
            cols = line.split("\t")
            if len(cols) != 4:
                raise GazetteerError(f"{path}:{n}: expected name<TAB>districts<TAB>kind<TAB>match")
            name, districts, kind, match = (c.strip() for c in cols)
            if kind not in KINDS:
                raise GazetteerError(f"{path}:{n}: kind {kind!r} is not one of {', '.join(KINDS)}")
            if match not in ("any", "suffix"):
                raise GazetteerError(f"{path}:{n}: match {match!r} is not 'any' or 'suffix'")
            if not name or not districts:
                raise GazetteerError(f"{path}:{n}: empty name or districts")
            if name in seen:
                raise GazetteerError(f"{path}:{n}: {name!r} is listed twice")
            seen.add(name)
            places.append(Place(name, tuple(districts.split("|")), kind, match == "suffix"))
        return cls(places)

    def find(self, transcript: str | TextView) -> list[PlaceMatch]:
        """Every place named in the transcript, left to right, longest match first, no overlaps."""
        view = transcript if isinstance(transcript, TextView) else TextView(transcript)
        text = view.text
        out: list[PlaceMatch] = []
        i = 0
        while i < len(text):
            match = None
            for place in self._by_first.get(text[i], ()):
                end = i + len(place.name)
                if text.startswith(place.name, i):
                    suffix = next((s for s in SUFFIXES if text.startswith(s, end)), "")
                    if place.suffix_only and not suffix:
                        continue
                    if place.kind == "区":
                        suffix = ""
                    match = PlaceMatch(place, view.span(i, end + len(suffix)), i, end + len(suffix))
                    break
            if match is None:
                i += 1
                continue
            out.append(match)
            i = match.clean_end
        return out

    def locate(self, transcript: str | TextView) -> Location:
        """The district and the street/area the caller names (the first of each that fit together)."""
        matches = self.find(transcript)
        named = [m for m in matches if m.place.kind == "区"]
        areas = [m for m in matches if m.place.kind != "区"]
        district_m = named[0] if named else None
        district = district_m.place.districts[0] if district_m else None
        area_m = None
        consistent = True
        if areas:
            fitting = [m for m in areas if district is None or district in m.place.districts]
            if fitting:
                area_m = fitting[0]
            else:
                area_m, consistent = areas[0], False
        candidates: tuple[str, ...] = ()
        if district is None and area_m is not None:
            if len(area_m.place.districts) == 1:
                district = area_m.place.districts[0]
            else:
                candidates = area_m.place.districts
        if not consistent:
            log.debug("district %s does not contain %s", district, area_m.place.name if area_m else None)
        return Location(
            district=district,
            area=area_m.place.name if area_m else None,
            district_evidence=district_m.span if district_m else (area_m.span if area_m and district else None),
            area_evidence=area_m.span if area_m else None,
            candidates=candidates,
            consistent=consistent,
        )


@functools.lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The shipped gazetteer, read once per process."""
    return Gazetteer.load()
