"""Loading and checking knowledge-base files: typed entries, refusals naming file, entry and reason, warnings."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from kbfiles import FIXTURE, edit, fixture_copy

from ivr.kb import Entry, KbError, Source, check_kb, load_kb
from ivr.kb.loader import spoken_seconds


def test_fixture_loads_into_typed_entries() -> None:
    kb = load_kb(FIXTURE)
    assert [e.id for e in kb] == ["ht_season", "ht_not_warm", "ht_fee", "ss_card_lost", "ss_contribution_query",
                                  "ss_pension_claim"]
    season = kb.get("ht_season")
    assert isinstance(season, Entry)
    assert season.file == "heating" and season.topic == "供暖" and season.department == "市城市管理委员会"
    assert season.questions == ("什么时候开始供暖", "暖气几号来", "今年供暖到几月份")
    assert season.synonyms == ("暖气", "供热", "采暖")
    assert season.source == Source("北京市供热采暖管理办法", None)
    assert (season.status, season.checked_on, season.checked_by) == ("checked", date(2026, 12, 1), "fixture")
    assert season.expires == date(2027, 12, 1)
    assert season.prompt_name == "kb_ht_season"
    assert season.spoken.startswith("北京的法定供暖期") and not season.spoken.endswith("\n")
    card = kb.get("ss_card_lost")
    assert card is not None and card.source.url == "https://example.org/ss-card"
    assert kb.get("nope") is None


def test_speakable_only_when_checked_and_not_expired() -> None:
    kb = load_kb(FIXTURE)
    today = date(2026, 12, 6)
    assert [e.id for e in kb.speakable(today)] == ["ht_season", "ht_not_warm", "ss_card_lost",
                                                    "ss_contribution_query", "ss_pension_claim"]
    pension = kb.get("ss_pension_claim")
    assert pension is not None
    assert pension.speakable(date(2026, 12, 31))  # the expiry day itself is still spoken
    assert not pension.speakable(date(2027, 1, 1))
    fee = kb.get("ht_fee")
    assert fee is not None and fee.status == "unverified" and not fee.speakable(today)


def test_spoken_seconds_counts_syllables_at_four_a_second() -> None:
    assert spoken_seconds("供暖期，十一月五日。") == 2  # 8 syllables, punctuation silent
    assert spoken_seconds("一" * 120) == 30
    assert spoken_seconds("一" * 121) == 31
    assert spoken_seconds("拨打12345") == 2  # digits are syllables too


def refused(directory: Path) -> KbError:
    with pytest.raises(KbError) as info:
        load_kb(directory)
    return info.value


def test_a_spoken_answer_over_30_s_is_refused_naming_file_and_entry(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    long = "供暖" * 81  # 162 syllables: 41 s
    edit(kb / "heating.yaml", "北京的法定供暖期是每年十一月十五日到第二年三月十五日，遇到天气特别冷，会提前或者延后，以政府通知为准。", long)
    assert str(refused(kb)) == f"{kb}/heating.yaml: ht_season: spoken answer is 41 s, over 30 s"


@pytest.mark.parametrize(("file", "old", "new", "reason"), [
    ("heating.yaml", "    title: 供暖开始和结束时间\n", "", "ht_season: missing `title`"),
    ("heating.yaml", "    status: unverified\n", "", "ht_fee: missing `status`"),
    ("heating.yaml", "  - id: ht_fee\n", "  - id: ht_fee\n    answer: 多余\n", "ht_fee: unknown field `answer`"),
    ("heating.yaml", "  - id: ht_fee\n", "  - id: ht-fee\n", "ht-fee: id 'ht-fee' is not [a-z0-9_]+"),
    ("heating.yaml", "  - id: ht_fee\n    title: 供暖费的缴纳\n", "  - title: 供暖费的缴纳\n", "entry 3: missing `id`"),
    ("heating.yaml", "status: unverified\n", "status: draft\n", "ht_fee: status 'draft' is not checked or unverified"),
    ("heating.yaml", "    checked_on: 2026-12-01\n    checked_by: fixture\n    expires: 2027-12-01\n",
     "    checked_by: fixture\n", "ht_season: `checked_on` is required when status is checked"),
    ("heating.yaml", "expires: 2027-12-01", "expires: 明年", "ht_season: `expires` '明年' is not a date (YYYY-MM-DD)"),
    ("heating.yaml", "      - 暖气几号来\n", "      - 暖气几号来\n      - 12\n",
     "ht_season: `questions` must be a list of texts"),
    ("heating.yaml", "department: 市城市管理委员会\n", "", "ht_season: missing `department` (of the entry or of the file) (and 2 more errors)"),
    ("heating.yaml", "      - 取暖费怎么交\n", "      - 取暖费怎么交\n      - 暖气几号来\n",
     "ht_fee: question '暖气几号来' is also a question of ht_season"),
    ("heating.yaml", "      - 取暖费怎么交\n", "      - 取暖费怎么交\n      - 取暖费 怎么交？\n",
     "ht_fee: question '取暖费 怎么交？' given twice"),
    ("social_insurance.yaml", "  - id: ss_pension_claim\n", "  - id: ht_season\n",
     "ht_season: id used twice (first in {kb}/heating.yaml)"),
    ("social_insurance.yaml", "      url: https://example.org/ss-card\n", "      url: example.org\n",
     "ss_card_lost: `source.url` 'example.org' is not an http(s) address"),
    ("heating.yaml", "    synonyms: [取暖费, 采暖费, 热费]\n", "    synonyms: [取暖费]\n    synonyms: [热费]\n",
     "field `synonyms` given twice (line 45)"),
    ("heating.yaml", "topic: 供暖\n", "topic: 供暖\nowner: 张三\n", "unknown field `owner` (expected topic, department, entries)"),
    ("heating.yaml", "entries:\n", "entries: []\nold:\n", "a knowledge base file needs `topic` and a list of `entries`"),
    ("heating.yaml", "    questions:\n      - 家里暖气不热", "    questions:\n    - [\n      - 家里暖气不热",
     "not valid YAML at line 26 (expected the node content, but found '-')"),
])
def test_a_bad_file_is_refused_with_file_entry_and_reason(tmp_path: Path, file: str, old: str, new: str,
                                                           reason: str) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / file, old, new)
    assert str(refused(kb)) == f"{kb}/{file}: " + reason.format(kb=kb)


def test_not_utf8_and_empty_folders_are_refused(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    (kb / "heating.yaml").write_bytes("topic: 供暖\n".encode("gb18030"))
    assert str(refused(kb)) == f"{kb}/heating.yaml: not UTF-8 text (line 1); save it as UTF-8"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert str(refused(empty)) == f"{empty}: no knowledge base files (*.yaml)"
    assert str(refused(tmp_path / "missing")) == f"{tmp_path}/missing: knowledge base folder not found"


def test_every_error_is_kept_and_counted(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / "heating.yaml", "    title: 供暖开始和结束时间\n", "")
    edit(kb / "social_insurance.yaml", "    title: 查询社保缴费记录\n", "")
    error = refused(kb)
    assert str(error).endswith("ht_season: missing `title` (and 1 more error)")
    assert [str(f) for f in error.findings] == [f"{kb}/heating.yaml: ht_season: missing `title`",
                                                f"{kb}/social_insurance.yaml: ss_contribution_query: missing `title`"]


def test_check_lists_warnings_for_dates_status_and_style(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / "heating.yaml", "      - 今年供暖到几月份\n", "")
    edit(kb / "heating.yaml", "请先联系您家的供热单位报修", "请先拨打96069报修")
    findings = check_kb(kb, date(2026, 12, 6))
    assert all(f.level == "warning" for f in findings)
    assert [str(f) for f in findings] == [
        f"{kb}/heating.yaml: ht_season: 2 question forms (write 3-6)",
        f"{kb}/heating.yaml: ht_not_warm: spoken answer has digits (96069): write numbers as they are to be heard",
        f"{kb}/heating.yaml: ht_fee: unverified: not spoken until a supervisor marks it checked",
        f"{kb}/social_insurance.yaml: ss_pension_claim: expires on 2026-12-31, in 25 days",
    ]
    later = [str(f) for f in check_kb(kb, date(2027, 1, 2))]
    assert f"{kb}/social_insurance.yaml: ss_pension_claim: expired on 2026-12-31: not spoken" in later


def test_check_reports_errors_too_and_a_missing_folder(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / "heating.yaml", "    status: unverified\n", "")
    errors = [str(f) for f in check_kb(kb, date(2026, 12, 6)) if f.level == "error"]
    assert errors == [f"{kb}/heating.yaml: ht_fee: missing `status`"]
    missing = check_kb(tmp_path / "nope", date(2026, 12, 6))
    assert [(f.level, str(f)) for f in missing] == [("error", f"{tmp_path}/nope: knowledge base folder not found")]


def test_a_date_with_a_time_is_read_as_its_day(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / "heating.yaml", "expires: 2027-12-01", "expires: 2027-12-01 18:00:00")
    season = load_kb(kb).get("ht_season")
    assert season is not None and season.expires == date(2027, 12, 1)
    assert season.speakable(date(2027, 12, 1)) and not season.speakable(date(2027, 12, 2))
