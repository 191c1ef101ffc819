from pathlib import Path

import numpy as np
import pytest

from asr.textclass import ClassifierError, TextClassifier, TrainConfig, features, normalise

TOY_TEXTS = [
    "暖气不热屋里很冷",
    "暖气片是凉的",
    "供暖温度不够",
    "路灯不亮了",
    "晚上路灯坏了很黑",
    "这条路没有路灯",
    "工地半夜施工太吵",
    "夜里工地打桩声音大",
    "施工噪音吵得睡不着",
]
TOY_LABELS = ["供暖"] * 3 + ["路灯"] * 3 + ["施工噪音"] * 3
TOY_DEPTS = {"供暖": "供热办", "路灯": "照明所", "施工噪音": "城管执法", "燃气": "燃气集团"}


@pytest.fixture(scope="module")
def toy() -> TextClassifier:
    return TextClassifier.fit(TOY_TEXTS, TOY_LABELS, TOY_DEPTS)


def test_normalise_joins_spaced_words_and_folds_width() -> None:
    assert normalise("我 家 暖气，不热！ＡＢ１２") == "我家暖气不热ab12"


def test_features_have_words_and_character_ngrams_without_stopwords() -> None:
    f = features("我家暖气不热了", char_ngrams=(1, 2))
    assert f["w:暖气"] == 1
    assert f["c:暖气"] == 1 and f["c:热"] == 1
    assert "w:了" not in f and "c:了" not in f and "c:我" not in f
    assert features("，。 ") == {}


def test_predicts_the_right_category_with_department_and_evidence(toy: TextClassifier) -> None:
    preds = toy.predict("我们家的暖气一直不热", k=3)
    assert [p.category for p in preds][0] == "供暖"
    assert preds[0].department == "供热办"
    assert len(preds) == 3
    assert preds[0].score > preds[1].score >= preds[2].score
    assert 0.0 < sum(p.score for p in preds) <= 1.0 + 1e-9
    assert preds[0].evidence, "the winning category must show the terms that weighed most"
    assert all(e.term in "我们家的暖气一直不热" and e.weight > 0 for e in preds[0].evidence)
    assert toy.predict("楼下工地晚上施工")[0].category == "施工噪音"
    assert toy.predict("路灯全黑")[0].category == "路灯"


def test_category_without_examples_is_a_class_but_does_not_win(toy: TextClassifier) -> None:
    assert "燃气" in toy.classes
    assert toy.predict("暖气不热")[0].category != "燃气"


def test_text_without_known_terms_still_gives_k_predictions(toy: TextClassifier) -> None:
    preds = toy.predict("ＸＹＺ", k=2)
    assert len(preds) == 2 and all(p.evidence == () for p in preds)


def test_save_and_load_round_trip(toy: TextClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(toy.to_bytes())
    assert path.stat().st_size < 200_000
    back = TextClassifier.load(path)
    assert back.classes == toy.classes and back.departments == toy.departments
    assert back.config == toy.config
    for text in ["暖气不热", "路灯坏了", "工地太吵", "不相干的话"]:
        a, b = toy.predict(text), back.predict(text)
        assert [p.category for p in a] == [p.category for p in b]
        assert np.allclose([p.score for p in a], [p.score for p in b], atol=1e-5)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.npz"
    with pytest.raises(ClassifierError, match=r"none\.npz: model file not found$"):
        TextClassifier.load(missing)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ClassifierError, match=r"junk\.npz: not a dispatch model"):
        TextClassifier.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros((2, 2)))
    with pytest.raises(ClassifierError, match=r"other\.npz: not a dispatch model \(missing header\)$"):
        TextClassifier.load(other)


def test_load_rejects_another_model_version(toy: TextClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(toy.to_bytes())
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    data["header"] = np.array(str(data["header"]).replace('"version": 1', '"version": 99'))
    np.savez(path.with_suffix(".npz"), **data)
    with pytest.raises(ClassifierError, match=r"model version 99 is not 1; run `ivr dispatch retrain`$"):
        TextClassifier.load(path)


def test_fit_rejects_bad_training_data() -> None:
    with pytest.raises(ClassifierError, match="^labels not in the catalogue: 电力$"):
        TextClassifier.fit(["停电了"], ["电力"], TOY_DEPTS)
    with pytest.raises(ClassifierError, match="^2 texts but 1 labels$"):
        TextClassifier.fit(["a", "b"], ["供暖"], TOY_DEPTS)
    with pytest.raises(ClassifierError, match="^no training texts$"):
        TextClassifier.fit([], [], TOY_DEPTS)
    with pytest.raises(ClassifierError, match="^sample_weights must be one positive number per text$"):
        TextClassifier.fit(["暖气"], ["供暖"], TOY_DEPTS, sample_weights=[0.0])


def test_sample_weights_shift_the_decision() -> None:
    texts = ["楼道灯不亮", "楼道灯不亮", "暖气不热"]
    cfg = TrainConfig(epochs=100)
    light = TextClassifier.fit(texts, ["路灯", "供暖", "供暖"], TOY_DEPTS, [5.0, 1.0, 1.0], cfg)
    heat = TextClassifier.fit(texts, ["路灯", "供暖", "供暖"], TOY_DEPTS, [1.0, 5.0, 1.0], cfg)
    assert light.predict("楼道灯不亮")[0].category == "路灯"
    assert heat.predict("楼道灯不亮")[0].category == "供暖"


def test_training_is_deterministic() -> None:
    a = TextClassifier.fit(TOY_TEXTS, TOY_LABELS, TOY_DEPTS)
    b = TextClassifier.fit(TOY_TEXTS, TOY_LABELS, TOY_DEPTS)
    assert np.array_equal(a.weights, b.weights)
