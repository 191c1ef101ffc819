"""Hot reload of the knowledge base: an edit serves the next question, a bad edit keeps the last good version."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from kbfiles import edit, fixture_copy

from ivr.kb import KbError, KbRegistry


def bump(path: Path) -> None:
    """Move the file's mtime on, as a later save does (a file system's clock may be coarse)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_an_edited_file_is_reloaded_for_the_next_question(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    registry = KbRegistry(kb)
    first = registry.current()
    assert registry.current() is first
    edit(kb / "heating.yaml", "title: 供暖费的缴纳", "title: 供暖费怎么交")
    bump(kb / "heating.yaml")
    second = registry.current()
    assert second is not first and second.digest != first.digest
    fee = second.get("ht_fee")
    assert fee is not None and fee.title == "供暖费怎么交"
    assert (registry.reloads, registry.last_error) == (1, "")
    old = first.get("ht_fee")
    assert old is not None and old.title == "供暖费的缴纳"  # a question already being answered keeps its version


def test_a_new_file_is_picked_up_and_a_touch_is_not_a_reload(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    registry = KbRegistry(kb)
    first = registry.current()
    bump(kb / "heating.yaml")
    assert registry.current() is first and registry.reloads == 0
    (kb / "water.yaml").write_text(
        "topic: 用水\ndepartment: 市水务局\nentries:\n  - id: wt_outage\n    title: 停水\n    questions: [怎么停水了]\n"
        "    spoken: 请留意停水通知。\n    text: 计划停水提前公告。\n    source: {title: 供水条例}\n    status: unverified\n",
        encoding="utf-8")
    assert registry.current().get("wt_outage") is not None and registry.reloads == 1


def test_a_bad_edit_keeps_the_old_knowledge_base_and_says_why(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    kb = fixture_copy(tmp_path)
    registry = KbRegistry(kb)
    good = registry.current()
    edit(kb / "heating.yaml", "    status: unverified\n", "    status: maybe\n")
    bump(kb / "heating.yaml")
    with caplog.at_level(logging.ERROR, logger="ivr.kb.registry"):
        assert registry.current() is good
    expected = (f"{kb}/heating.yaml: ht_fee: status 'maybe' is not checked or unverified; "
                f"keeping version {good.digest[:12]}")
    assert registry.last_error == expected
    assert caplog.messages == [f"knowledge base edit rejected: {expected}"]
    assert registry.current() is good and registry.reloads == 0  # not re-read until the files change again
    edit(kb / "heating.yaml", "    status: maybe\n", "    status: checked\n    checked_on: 2026-12-06\n")
    bump(kb / "heating.yaml")
    fixed = registry.current()
    assert fixed is not good and registry.last_error == "" and registry.reloads == 1
    fee = fixed.get("ht_fee")
    assert fee is not None and fee.status == "checked"


def test_the_first_version_must_be_good(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / "heating.yaml", "    title: 供暖开始和结束时间\n", "")
    with pytest.raises(KbError, match=r"heating.yaml: ht_season: missing `title`$"):
        KbRegistry(kb)


def test_latest_never_waits_and_the_reload_it_starts_serves_the_next_question(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    registry = KbRegistry(kb)
    first = registry.latest()
    assert registry.reloading is None and registry.latest() is first  # nothing changed: no thread
    edit(kb / "heating.yaml", "title: 供暖费的缴纳", "title: 供暖费怎么交")
    bump(kb / "heating.yaml")
    assert registry.latest() is first  # this question gets the version already loaded
    thread = registry.reloading
    assert thread is not None and thread.name == "kb-reload"
    thread.join()
    second = registry.latest()
    fee = second.get("ht_fee")
    assert second is not first and fee is not None and fee.title == "供暖费怎么交"
    assert registry.reloads == 1 and registry.reloading is thread  # no second thread for the same change


def test_latest_keeps_the_good_version_when_the_background_reload_is_refused(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    registry = KbRegistry(kb)
    good = registry.latest()
    edit(kb / "heating.yaml", "    status: unverified\n", "    status: maybe\n")
    bump(kb / "heating.yaml")
    registry.latest()
    assert registry.reloading is not None
    registry.reloading.join()
    assert registry.latest() is good and registry.reloads == 0
    assert registry.last_error.startswith(f"{kb}/heating.yaml: ht_fee: status 'maybe' is not checked or unverified")
