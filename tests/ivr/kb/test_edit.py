"""A supervisor's edit of one entry written back to its file: only the edited fields' lines change, the previous
version is kept and the edit audited; a refused edit (bad field, bad knowledge base, a full disk) writes nothing."""
from __future__ import annotations

import dataclasses
import difflib
import errno
import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from kbfiles import FIXTURE, fixture_copy

from ivr.kb import KbError, load_kb
from ivr.kb.edit import entry_history, file_version, save_entry

NOW = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=timezone.utc)


def _changed_lines(old: str, new: str) -> list[str]:
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_only_the_edited_fields_change_and_the_previous_version_is_kept(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    path = kb / "heating.yaml"
    old = path.read_text(encoding="utf-8")
    written = save_entry(kb, "ht_fee", {"questions": ["取暖费怎么交", "暖气费一平米多少钱"], "expires": "2027-06-30"},
                         "sup1", now=NOW)
    assert written == path
    assert _changed_lines(old, path.read_text(encoding="utf-8")) == [
        "-      - 供暖费在哪里缴", "-      - 暖气费多少钱一平米", "+      - 暖气费一平米多少钱", "+    expires: 2027-06-30"]
    kept = kb / ".history" / "heating" / "20261206T093015123456Z.yaml"
    assert kept.read_text(encoding="utf-8") == old
    assert (kb / "social_insurance.yaml").read_bytes() == (FIXTURE / "social_insurance.yaml").read_bytes()
    assert json.loads((kb / ".history" / "audit.jsonl").read_text(encoding="utf-8")) == {
        "at": "2026-12-06T09:30:15.123456+00:00", "user": "sup1", "file": "heating.yaml", "entry": "ht_fee",
        "fields": ["questions", "expires"], "previous": ".history/heating/20261206T093015123456Z.yaml"}
    entry = load_kb(kb).get("ht_fee")
    assert entry is not None and entry.questions == ("取暖费怎么交", "暖气费一平米多少钱")
    assert entry.status == "unverified" and entry.checked_on is None  # unverified: no checked stamp


def test_saving_as_checked_stamps_the_date_and_the_supervisor(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    spoken = "供暖费按建筑面积收取，请在每年十一月十五日以前向供热单位缴纳。"
    save_entry(kb, "ht_fee", {"spoken": spoken, "status": "checked"}, "sup1", now=NOW)
    save_entry(kb, "ht_season", {"expires": None}, "sup2", now=NOW)  # the expiry removed
    kb_now = load_kb(kb)
    fee, season = kb_now.get("ht_fee"), kb_now.get("ht_season")
    assert fee is not None and (fee.spoken, fee.status, fee.checked_on, fee.checked_by) == (
        spoken, "checked", date(2026, 12, 6), "sup1")
    assert season is not None and season.expires is None and season.checked_by == "sup2"
    assert [(h.user, h.fields) for h in entry_history(kb, "ht_fee")] == [("sup1", ("spoken", "status"))]
    assert "expires" not in (kb / "heating.yaml").read_text(encoding="utf-8").split("id: ht_not_warm")[0]


def test_text_from_a_browser_form_is_written_as_a_block_of_lines(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    save_entry(kb, "ht_fee", {"text": "按建筑面积计费。  \r\n营业厅、手机缴费。\r\n"}, "sup1", now=NOW)
    assert "    text: |-\n      按建筑面积计费。\n      营业厅、手机缴费。\n    source:" in (kb / "heating.yaml").read_text(
        encoding="utf-8")
    assert load_kb(kb).get("ht_fee").text == "按建筑面积计费。\n营业厅、手机缴费。"  # type: ignore[union-attr]


def test_an_edit_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    entry = load_kb(kb).get("ht_season")
    assert entry is not None
    save_entry(kb, "ht_season", {"spoken": entry.spoken + "\n", "questions": list(entry.questions),
                                 "expires": entry.expires}, "sup1", now=NOW)
    assert not (kb / ".history").exists()
    assert (kb / "heating.yaml").read_bytes() == (FIXTURE / "heating.yaml").read_bytes()


@pytest.mark.parametrize("entry_id, fields, message", [
    ("ht_fee", {"title": "x"}, "kb/heating.yaml: ht_fee: `title` cannot be edited here (only spoken, text, "
                               "questions, status, expires)"),
    ("ht_fee", {"questions": "取暖费怎么交"}, "kb/heating.yaml: ht_fee: `questions` must be a list of texts"),
    ("ht_fee", {"questions": [" ", ""]}, "kb/heating.yaml: ht_fee: missing `questions`"),
    ("ht_fee", {"spoken": "  "}, "kb/heating.yaml: ht_fee: `spoken` must be text"),
    ("ht_fee", {"expires": "next year"}, "kb/heating.yaml: ht_fee: `expires` 'next year' is not a date (YYYY-MM-DD)"),
    ("ht_nope", {"spoken": "x"}, "kb: ht_nope: no such entry"),
    ("ht_fee", {"spoken": "很" * 121}, "kb/heating.yaml: ht_fee: spoken answer is 31 s, over 30 s"),
])
def test_a_bad_edit_is_refused_with_file_entry_and_reason(tmp_path: Path, entry_id: str, fields: dict[str, Any],
                                                          message: str) -> None:
    kb = fixture_copy(tmp_path)
    with pytest.raises(KbError) as caught:
        save_entry(kb, entry_id, fields, "sup1", now=NOW)
    assert str(caught.value) == message
    assert not (kb / ".history").exists()
    assert (kb / "heating.yaml").read_bytes() == (FIXTURE / "heating.yaml").read_bytes()


def test_an_edit_of_a_file_changed_since_it_was_opened_is_refused(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    seen = file_version(kb / "heating.yaml")
    save_entry(kb, "ht_fee", {"status": "checked"}, "sup1", base=seen, now=NOW)
    with pytest.raises(KbError, match="ht_season: the file was changed since you opened the entry; open it again"):
        save_entry(kb, "ht_season", {"expires": None}, "sup2", base=seen, now=NOW)
    assert len(entry_history(kb, "ht_fee")) == 1 and entry_history(kb, "ht_season") == []


@pytest.mark.parametrize("room", [0, 4096])  # no room at all; room for the previous version but not the new one
def test_a_full_disk_leaves_the_file_and_its_history_as_they_were(tmp_path: Path, small_disks: Any,
                                                                   room: int) -> None:
    kb = small_disks.mount(tmp_path / "kb", "256k")
    for f in FIXTURE.glob("*.yaml"):
        shutil.copy(f, kb / f.name)
    (kb / ".history" / "heating").mkdir(parents=True)
    small_disks.fill(kb, leave_bytes=room)
    with pytest.raises(OSError) as caught:
        save_entry(kb, "ht_fee", {"status": "checked"}, "sup1", now=NOW)
    assert caught.value.errno == errno.ENOSPC
    assert (kb / "heating.yaml").read_bytes() == (FIXTURE / "heating.yaml").read_bytes()
    assert list((kb / ".history").rglob("*.yaml")) == [] and not (kb / ".history" / "audit.jsonl").exists()
    assert sorted(p.name for p in kb.iterdir()) == [".history", "filler", "heating.yaml", "social_insurance.yaml"]


def test_an_entry_of_each_shipped_file_can_be_edited_in_place(tmp_path: Path) -> None:
    """Whatever YAML style a shipped file uses, an edit changes the edited entry's fields only (the last entry of
    each file, so its end is found too)."""
    kb = tmp_path / "kb"
    kb.mkdir()
    for f in (Path(__file__).resolve().parents[3] / "kb").glob("*.yaml"):
        shutil.copy(f, kb / f.name)
    shipped = load_kb(kb)
    last = {e.file: e for e in shipped}
    for e in last.values():
        save_entry(kb, e.id, {"text": e.text + "\n补充一行。", "questions": [*e.questions, f"测试问法{e.id}"],
                              "expires": "2030-01-01"}, "sup1", now=NOW)
    edited = load_kb(kb)
    assert [e.id for e in edited] == [e.id for e in shipped] and len(last) >= 13
    for old, new in zip(shipped, edited):
        if last[old.file] is not old:
            assert new == old, old.id
            continue
        stamp = dict(checked_on=NOW.date(), checked_by="sup1") if old.status == "checked" else {}
        assert new == dataclasses.replace(old, text=old.text + "\n补充一行。", questions=(*old.questions, f"测试问法{old.id}"),
                                          expires=date(2030, 1, 1), **stamp), old.id  # type: ignore[arg-type]
