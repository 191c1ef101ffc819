import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asr.textclass import TextClassifier
from ivr.commands.dispatch import app
from ivr.config import Settings
from ivr.triage.dispatch import (
    DEFAULT_EVAL_SET, DispatchCatalogue, CatalogueError, Correction, Dispatcher, complaint_text, evaluate,
    format_evaluation, load_dispatch_catalogue, load_labelled, model_path, retrain, save_model,
)

SHARED_TRANSCRIPTS = Path(__file__).resolve().parents[4] / "shared" / "audio" / "zh" / "transcripts.tsv"


@pytest.fixture(scope="module")
def catalogue() -> DispatchCatalogue:
    return load_dispatch_catalogue()


@pytest.fixture(scope="module")
def model(catalogue: DispatchCatalogue) -> TextClassifier:
    return retrain(catalogue)


def _bigrams(s: str) -> set[str]:
    return {s[i:i + 2] for i in range(len(s) - 1)}


def test_shipped_catalogue_is_a_realistic_city(catalogue: DispatchCatalogue) -> None:
    assert len(catalogue.categories) >= 20
    for c in catalogue.categories:
        assert c.department and c.description
        assert len(c.examples) >= 10, c.name
        assert len(set(c.examples)) == len(c.examples), c.name
    for name in ["施工噪音", "生活噪音", "供暖", "路灯照明", "违章停车", "物业管理", "预付卡退费", "老楼加装电梯",
                 "社会保险", "医保", "公积金", "居住证", "供水", "燃气", "供电", "食品安全", "公共交通", "环境卫生",
                 "市政设施", "邻里纠纷", "拖欠工资", "园林绿化", "教育"]:
        assert name in catalogue.names
    assert catalogue.department("公积金") == "北京住房公积金管理中心"


def test_held_out_set_is_large_labelled_and_apart_from_training(catalogue: DispatchCatalogue) -> None:
    labelled = load_labelled(DEFAULT_EVAL_SET)
    assert len(labelled) >= 200
    assert {c for _, c in labelled} == set(catalogue.names)
    examples = [e for c in catalogue.categories for e in c.examples]
    for text, _ in labelled:
        assert text not in examples
        b = _bigrams(text)
        closest = max(len(b & _bigrams(e)) / min(len(b), len(_bigrams(e))) for e in examples)
        assert closest < 0.6, f"{text} is too close to a training example"


def test_accuracy_on_the_held_out_set(model: TextClassifier) -> None:
    ev = evaluate(model, load_labelled(DEFAULT_EVAL_SET))
    assert ev.n >= 200
    assert ev.accuracy >= 0.80
    assert ev.top3_accuracy >= 0.93
    assert sum(sum(row.values()) for row in ev.confusion.values()) == ev.n
    assert len(ev.errors) == round(ev.n * (1 - ev.accuracy))
    report = format_evaluation(ev)
    assert f"accuracy       {ev.accuracy:.1%}" in report and "top-3 accuracy" in report


@pytest.mark.skipif(not SHARED_TRANSCRIPTS.exists(), reason="the shared caller transcripts are not on this machine")
def test_shared_caller_transcripts_get_their_category_in_the_top_three(model: TextClassifier) -> None:
    rows = [line.split("\t") for line in SHARED_TRANSCRIPTS.read_text(encoding="utf-8").splitlines()[1:]]
    labelled = [(r[1], r[2].split(":", 1)[1]) for r in rows if r[2].split(":")[0] in ("complaint", "consult")]
    assert len(labelled) >= 8
    ev = evaluate(model, labelled)
    assert ev.top3_accuracy == 1.0, ev.errors
    assert ev.accuracy >= 0.75, ev.errors


def test_corrections_teach_the_model(catalogue: DispatchCatalogue) -> None:
    text = "小区里的快递柜收费太贵了还占了消防通道"
    before = retrain(catalogue)
    assert before.predict(text)[0].category != "消费维权"
    corrections = [
        Correction("小区快递柜超时收费太贵了", "消费维权"),
        ("快递柜存件收费不合理", "消费维权"),
        Correction("快递柜超过十二小时就收钱", "消费维权"),
    ]
    after = retrain(catalogue, corrections)
    assert after.predict(text)[0].category == "消费维权"
    assert after.meta["n_corrections"] == 3


def test_store_corrections_and_retired_categories(catalogue: DispatchCatalogue, caplog: pytest.LogCaptureFixture) -> None:
    @dataclass
    class StoredLike:
        text: str
        category: str
        user: str = "op1"

    with caplog.at_level(logging.WARNING, logger="ivr.tickets.dispatch"):
        m = retrain(catalogue, [StoredLike("暖气不热", "供暖"), StoredLike("老的分类", "已撤销的分类")])
    assert m.meta["n_corrections"] == 1 and m.meta["n_skipped"] == 1
    assert "skipped 1 correction(s) to '已撤销的分类': not in the catalogue" in caplog.text


def test_catalogue_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    with pytest.raises(CatalogueError, match=r"c\.yaml: catalogue file not found$"):
        load_dispatch_catalogue(p)
    p.write_text("categories: [", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"c\.yaml: not valid YAML"):
        load_dispatch_catalogue(p)
    p.write_text("categories:\n  - name: 供暖\n    examples: [暖气不热]\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"c\.yaml: category #1 has no department$"):
        load_dispatch_catalogue(p)
    p.write_text("categories:\n  - {name: 供暖, department: 供热办, examples: [暖气不热]}\n"
                 "  - {name: 供暖, department: 供热办, examples: [暖气凉]}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"c\.yaml: category '供暖' appears twice$"):
        load_dispatch_catalogue(p)
    p.write_text("categories:\n  - {name: 供暖, department: 供热办, examples: []}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"c\.yaml: category '供暖' has no examples$"):
        load_dispatch_catalogue(p)
    p.write_text("categories:\n  - {name: 供暖, department: 供热办, examples: [暖气不热]}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"c\.yaml: a catalogue needs at least two categories$"):
        load_dispatch_catalogue(p)


def test_labelled_file_errors(tmp_path: Path, model: TextClassifier) -> None:
    p = tmp_path / "l.tsv"
    p.write_text("text\tcategory\n暖气不热\t供暖\n# a comment\n\n路灯坏了\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"l\.tsv:5: expected text<TAB>category$"):
        load_labelled(p)
    p.write_text("暖气不热\t供暖\n", encoding="utf-8")
    assert load_labelled(p) == [("暖气不热", "供暖")]
    with pytest.raises(CatalogueError, match="^labelled categories not in the model: 火星$"):
        evaluate(model, [("暖气不热", "火星")])
    with pytest.raises(CatalogueError, match="^no labelled sentences to evaluate on$"):
        evaluate(model, [])


def test_dispatcher_trains_once_then_loads(tmp_path: Path) -> None:
    path = model_path(tmp_path)
    assert path == tmp_path / "dispatch-model.npz"
    d1 = Dispatcher.load_or_train(path)
    assert path.exists()
    mtime = path.stat().st_mtime_ns
    d2 = Dispatcher.load_or_train(path)
    assert path.stat().st_mtime_ns == mtime
    text = "楼下饭馆的油烟全飘到我家了"
    assert d1.suggest(text).category.category == d2.suggest(text).category.category == "大气污染"


def test_suggestion_puts_everything_together(model: TextClassifier) -> None:
    d = Dispatcher(model)
    text = "我叫张伟住在朝阳区望京花家地西里三区十二号楼楼道里有股煤气味电话一三八一二三四五六七八"
    s = d.suggest(text)
    assert s.category.category == "燃气" and s.category.department == "北京市燃气集团"
    assert len(s.categories) == 3
    assert (s.location.district, s.location.area) == ("朝阳区", "望京")
    assert s.urgency.transfer_now and s.urgency.reasons == ("燃气泄漏",)
    assert s.autofill.name is not None and s.autofill.name.display == "张伟"
    assert s.autofill.phone is not None and s.autofill.phone.digits == "13812345678"
    assert s.autofill.address is not None and s.autofill.address.text.endswith("12号楼")
    data = json.loads(json.dumps(s.to_dict(), ensure_ascii=False))
    assert data["urgency"]["level"] == "emergency" and data["urgency"]["transfer_now"] is True
    assert data["categories"][0]["category"] == "燃气"
    assert data["autofill"]["phone"]["evidence"]["text"] == "一三八一二三四五六七八"


def test_complaint_text_drops_the_caller_details(model: TextClassifier) -> None:
    from ivr.triage.autofill import extract_autofill

    text = "我叫张伟电话一三八一二三四五六七八我家暖气不热"
    cut = complaint_text(text, extract_autofill(text))
    assert "张伟" not in cut and "一三八" not in cut and "暖气不热" in cut


def test_cli_retrain_evaluate_suggest(tmp_path: Path) -> None:
    runner = CliRunner()
    settings = Settings(data_dir=tmp_path)
    res = runner.invoke(app, ["evaluate", str(DEFAULT_EVAL_SET)], obj=settings)
    assert res.exit_code == 1
    assert f"no dispatch model at {tmp_path / 'dispatch-model.npz'}: run `ivr dispatch retrain` first" in res.output
    extra = tmp_path / "corrections.tsv"
    extra.write_text("快递柜收费太贵\t消费维权\n快递柜超时收钱\t已撤销\n", encoding="utf-8")
    res = runner.invoke(app, ["retrain", "--corrections", str(extra)], obj=settings)
    assert res.exit_code == 0, res.output
    assert "and 1 corrections (1 skipped)" in res.output
    assert (tmp_path / "dispatch-model.npz").exists()
    res = runner.invoke(app, ["evaluate", str(DEFAULT_EVAL_SET)], obj=settings)
    assert res.exit_code == 0, res.output
    assert "top-3 accuracy" in res.output and "confusions (true -> predicted):" in res.output
    res = runner.invoke(app, ["suggest", "我家暖气不热"], obj=settings)
    assert res.exit_code == 0
    assert json.loads(res.output)["categories"][0]["category"] == "供暖"
    other = tmp_path / "elsewhere.npz"
    res = runner.invoke(app, ["retrain", "--no-store", "--model", str(other)], obj=settings)
    assert res.exit_code == 0 and other.exists()
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one column\n", encoding="utf-8")
    res = runner.invoke(app, ["evaluate", str(bad), "--model", str(other)], obj=settings)
    assert res.exit_code == 1 and "bad.tsv:1: expected text<TAB>category" in res.output


def test_model_trained_on_another_catalogue_is_reported(
    tmp_path: Path, catalogue: DispatchCatalogue, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.npz"
    small = DispatchCatalogue(catalogue.categories[:3])
    save_model(retrain(small), path)
    with caplog.at_level(logging.WARNING, logger="ivr.tickets.dispatch"):
        Dispatcher.load_or_train(path, small)
    assert "another catalogue" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="ivr.tickets.dispatch"):
        Dispatcher.load_or_train(path, catalogue)
    assert f"dispatch model {path} was trained on another catalogue: run `ivr dispatch retrain`" in caplog.text
