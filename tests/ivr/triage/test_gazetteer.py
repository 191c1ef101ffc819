from pathlib import Path

import pytest

from ivr.triage.gazetteer import Gazetteer, GazetteerError, Span, TextView

DISTRICTS = ["东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区", "门头沟区", "房山区",
             "通州区", "顺义区", "昌平区", "大兴区", "怀柔区", "平谷区", "密云区", "延庆区"]


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def test_shipped_gazetteer_covers_the_sixteen_districts_with_hundreds_of_places(gaz: Gazetteer) -> None:
    assert sorted(gaz.districts) == sorted(DISTRICTS)
    assert len(gaz.places) >= 300
    for p in gaz.places.values():
        assert all(d in DISTRICTS for d in p.districts), p
    for name, district in [("中关村", "海淀区"), ("望京", "朝阳区"), ("国贸", "朝阳区"), ("金融街", "西城区"),
                           ("和平里", "东城区"), ("回龙观", "昌平区"), ("天通苑", "昌平区"), ("亦庄", "大兴区")]:
        assert gaz.places[name].districts == (district,)


def test_district_and_street_with_evidence(gaz: Gazetteer) -> None:
    text = "东城区和平里街道有一家工地半夜还在施工太吵了"
    loc = gaz.locate(text)
    assert (loc.district, loc.area) == ("东城区", "和平里")
    assert loc.district_evidence == Span(0, 3, "东城区")
    assert loc.area_evidence == Span(3, 8, "和平里街道")
    assert text[loc.area_evidence.start:loc.area_evidence.end] == "和平里街道"


def test_area_alone_gives_its_district(gaz: Gazetteer) -> None:
    loc = gaz.locate("我在望京那边上班楼下井盖丢了")
    assert (loc.district, loc.area) == ("朝阳区", "望京")
    assert loc.district_evidence == Span(2, 4, "望京")


def test_short_district_names(gaz: Gazetteer) -> None:
    assert gaz.locate("我是海淀的").district == "海淀区"
    assert gaz.locate("通州这边停水了").district == "通州区"


def test_longest_match_wins(gaz: Gazetteer) -> None:
    loc = gaz.locate("朝阳门外大街有个坑")
    assert (loc.district, loc.area) == ("东城区", "朝阳门")
    assert gaz.locate("天通苑北三区").area == "天通苑北"


def test_ambiguous_area_lists_candidates_unless_district_named(gaz: Gazetteer) -> None:
    loc = gaz.locate("八里庄这边路灯坏了")
    assert loc.district is None and loc.area == "八里庄"
    assert set(loc.candidates) == {"朝阳区", "海淀区"}
    loc = gaz.locate("海淀区八里庄街道")
    assert (loc.district, loc.area, loc.candidates) == ("海淀区", "八里庄", ())


def test_common_words_need_a_suffix(gaz: Gazetteer) -> None:
    assert gaz.find("住平房太冷了") == []
    assert gaz.find("光明正大地说") == []
    loc = gaz.locate("朝阳区平房地区有人烧垃圾")
    assert loc.area == "平房" and loc.area_evidence == Span(3, 7, "平房地区")


def test_named_district_not_containing_the_area_is_flagged(gaz: Gazetteer) -> None:
    loc = gaz.locate("海淀区的望京")
    assert loc.district == "海淀区" and loc.area == "望京" and not loc.consistent
    assert gaz.locate("朝阳区的望京").consistent


def test_spans_refer_to_the_original_spaced_transcript(gaz: Gazetteer) -> None:
    text = "我 住 在 西城 区 金融 街 附近"
    loc = gaz.locate(text)
    assert (loc.district, loc.area) == ("西城区", "金融街")
    assert loc.district_evidence == Span(6, 10, "西城 区")
    assert loc.area_evidence == Span(11, 15, "金融 街")


def test_nothing_found(gaz: Gazetteer) -> None:
    loc = gaz.locate("我家暖气不热")
    assert loc.district is None and loc.area is None and loc.district_evidence is None


def test_text_view_maps_back() -> None:
    v = TextView("幺 三 八　ＡＢ")
    assert v.text == "幺三八AB"
    assert v.span(1, 3) == Span(2, 5, "三 八")


def test_bad_gazetteer_files(tmp_path: Path) -> None:
    with pytest.raises(GazetteerError, match=r"none\.tsv: gazetteer file not found$"):
        Gazetteer.load(tmp_path / "none.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("name\tdistricts\tkind\tmatch\n望京\t朝阳区\t小区\tany\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"bad\.tsv:2: kind '小区' is not one of 区, 街道, 地区$"):
        Gazetteer.load(bad)
    bad.write_text("望京\t朝阳区\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"bad\.tsv:1: expected name<TAB>districts<TAB>kind<TAB>match$"):
        Gazetteer.load(bad)
    bad.write_text("望京\t朝阳区\t地区\tany\n望京\t朝阳区\t地区\tany\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"bad\.tsv:2: '望京' is listed twice$"):
        Gazetteer.load(bad)
