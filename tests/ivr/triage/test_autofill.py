import pytest

from ivr.logs import mask_number
from ivr.triage.autofill import extract_autofill
from ivr.triage.gazetteer import Gazetteer, Span


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def _check_span(text: str, span: Span) -> None:
    assert text[span.start:span.end] == span.text


FULL = "您好我叫张伟我住在朝阳区望京花家地西里三区十二号楼二单元五零二我的电话是一三八一二三四五六七八"


def test_full_call_fills_name_phone_and_address(gaz: Gazetteer) -> None:
    f = extract_autofill(FULL, gaz)
    assert f.name is not None and (f.name.surname, f.name.given, f.name.display) == ("张", "伟", "张伟")
    assert f.name.evidence == Span(4, 6, "张伟")
    assert f.phone is not None and (f.phone.digits, f.phone.kind) == ("13812345678", "mobile")
    assert f.phone.evidence.text == "一三八一二三四五六七八"
    assert f.phone.masked == "138****5678"
    a = f.address
    assert a is not None
    assert a.text == "朝阳区望京花家地西里3区12号楼2单元502"
    assert (a.district, a.area) == ("朝阳区", "望京")
    assert a.evidence.text == "朝阳区望京花家地西里三区十二号楼二单元五零二"
    assert ("number", "12号楼") in a.parts and ("room", "502") in a.parts
    for span in (f.name.evidence, f.phone.evidence, a.evidence):
        _check_span(FULL, span)


@pytest.mark.parametrize(
    "text, display, surname, given",
    [
        ("我姓李住在西城区", "李先生/女士", "李", ""),
        ("我是王女士想反映个事", "王女士", "王", ""),
        ("免贵姓欧阳", "欧阳先生/女士", "欧阳", ""),
        ("我姓赵赵先生", "赵先生", "赵", ""),
        ("我叫王小明住在海淀区", "王小明", "王", "小明"),
        ("我是李秀英", "李秀英", "李", "秀英"),
        ("我 叫 刘洋 电话 是", "刘洋", "刘", "洋"),
    ],
)
def test_names(text: str, display: str, surname: str, given: str, gaz: Gazetteer) -> None:
    name = extract_autofill(text, gaz).name
    assert name is not None
    assert (name.display, name.surname, name.given) == (display, surname, given)
    _check_span(text, name.evidence)


@pytest.mark.parametrize("text", ["我是高层住户楼上漏水", "我是这个小区的业主", "我叫人来修过"])
def test_no_name_where_none_was_said(text: str, gaz: Gazetteer) -> None:
    assert extract_autofill(text, gaz).name is None


@pytest.mark.parametrize(
    "text, digits, kind",
    [
        ("我的手机号幺三九 零零 幺二 三四 五六", "13900123456", "mobile"),
        ("电话是两三八零零幺三八零零零", None, None),  # 两 reads 2: 23800138000 is no mobile number
        ("电话八四二一三三六五", "84213365", "landline"),
        ("你打零幺零八四二一三三六五就行", "01084213365", "landline"),
        ("联系方式138 1234 5678", "13812345678", "mobile"),
        ("我 叫 刘洋 电话 是 幺 三 八 零 零 幺 三 八 零 零 零", "13800138000", "mobile"),
        ("回电请打一五九一零零八六六八八", "15910086688", "mobile"),
    ],
)
def test_phone_numbers(text: str, digits: str | None, kind: str | None, gaz: Gazetteer) -> None:
    phone = extract_autofill(text, gaz).phone
    if digits is None:
        assert phone is None
        return
    assert phone is not None and (phone.digits, phone.kind) == (digits, kind)
    _check_span(text, phone.evidence)
    assert phone.evidence.text.replace(" ", "")[-1] in "0123456789零一二三四五六七八九幺两"


@pytest.mark.parametrize(
    "text",
    ["工单号是二零二六一一二八零零一", "身份证号一一零一零五一九八零", "我家门牌八四二一三三六五号", "等了一个星期了"],
)
def test_numbers_that_are_not_callback_numbers(text: str, gaz: Gazetteer) -> None:
    assert extract_autofill(text, gaz).phone is None


def test_address_with_area_only_gets_its_district(gaz: Gazetteer) -> None:
    text = "免贵姓欧阳住回龙观龙泽苑东区三号楼"
    a = extract_autofill(text, gaz).address
    assert a is not None
    assert a.text == "回龙观龙泽苑东区3号楼" and a.full == "昌平区回龙观龙泽苑东区3号楼"
    assert (a.district, a.area) == ("昌平区", "回龙观")
    _check_span(text, a.evidence)


def test_address_with_street_and_community(gaz: Gazetteer) -> None:
    text = "我家在海淀区中关村街道黄庄小区六号楼三单元一零一"
    a = extract_autofill(text, gaz).address
    assert a is not None
    assert a.parts == (("district", "海淀区"), ("area", "中关村街道"), ("community", "黄庄小区"),
                       ("number", "6号楼"), ("number", "3单元"), ("room", "101"))
    assert a.evidence == Span(3, 24, "海淀区中关村街道黄庄小区六号楼三单元一零一")


def test_address_stops_where_the_complaint_starts(gaz: Gazetteer) -> None:
    text = "我住在丰台区方庄芳古园一区二十号楼四门六零三楼下天天有人烧烤"
    a = extract_autofill(text, gaz).address
    assert a is not None and a.text == "丰台区方庄芳古园1区20号楼4门603"


def test_no_address_in_a_complaint_without_one(gaz: Gazetteer) -> None:
    f = extract_autofill("我们楼的电梯坏了一个星期了物业一直不修", gaz)
    assert f.address is None and f.phone is None and f.name is None


def test_a_callback_number_is_masked_by_the_one_mask() -> None:
    # autofill's own mask is gone (issue 13: one mask); the one mask keeps service numbers such as 110 readable
    assert mask_number("13812345678") == "138****5678"
    assert mask_number("84213365") == "842*3365"
    assert mask_number("110") == "110"


def test_address_does_not_swallow_the_words_after_the_building(gaz: Gazetteer) -> None:
    text = "住在朝阳区望京花家地西里三区十二号楼楼道里有股味"
    a = extract_autofill(text, gaz).address
    assert a is not None and a.text == "朝阳区望京花家地西里3区12号楼"
    assert a.evidence == Span(2, 18, "朝阳区望京花家地西里三区十二号楼")
