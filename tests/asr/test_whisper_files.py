"""CTranslate2 Whisper models in the models folder: the catalogue, install from a folder or zip, download file by
file over real HTTP, verify; `ivr models` with the real Whisper base."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asr.download import ChecksumError
from asr.errors import ModelError, ModelInvalidError
from asr.model_files import installed_models, verify_model
from asr.whisper_files import (
    WHISPER_CATALOGUE, WhisperFile, WhisperSpec, check_against, download_whisper, install_whisper,
)

FILES = {"model.bin": b"\x01" * 3000, "config.json": b'{"a": 1}', "tokenizer.json": b"{}", "vocabulary.txt": b"a\nb\n"}


def spec_of(files: dict[str, bytes], name: str = "whisper-test", base_url: str = "http://127.0.0.1:9/x") -> WhisperSpec:
    return WhisperSpec(name, base_url, tuple(WhisperFile(n, len(d), hashlib.sha256(d).hexdigest())
                                             for n, d in files.items()), "test")


def folder_of(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for n, d in files.items():
        (root / n).write_bytes(d)
    return root


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a folder; yields its URL and the folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", root
    srv.shutdown()
    srv.server_close()
    thread.join()


def test_the_catalogue_pins_every_file_of_small_and_medium() -> None:
    assert sorted(WHISPER_CATALOGUE) == ["whisper-medium", "whisper-small"]
    for spec in WHISPER_CATALOGUE.values():
        assert [f.name for f in spec.files] == ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"]
        assert all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0 for f in spec.files)
        assert re.search(r"/resolve/[0-9a-f]{40}$", spec.base_url)  # a pinned revision, not a moving branch
    assert WHISPER_CATALOGUE["whisper-small"].total_bytes == 483_546_902 + 2_370 + 2_203_239 + 459_861


def test_a_folder_is_installed_with_a_manifest_and_verified(tmp_path: Path) -> None:
    src = folder_of(tmp_path / "src" / "my-whisper", FILES)
    path = install_whisper(src, tmp_path / "models")
    assert path == tmp_path / "models" / "my-whisper"
    assert sorted(p.name for p in path.iterdir()) == [".ivr-model.json", *sorted(FILES)]
    manifest = json.loads((path / ".ivr-model.json").read_text())
    assert manifest["kind"] == "whisper" and manifest["files"]["model.bin"] == [3000, hashlib.sha256(FILES["model.bin"]).hexdigest()]
    assert [(m.name, m.valid) for m in installed_models(tmp_path / "models")] == [("my-whisper", True)]
    assert verify_model(path, deep=True).ok
    (path / "model.bin").write_bytes(b"\x02" * 3000)  # same size, other bytes
    assert verify_model(path).ok and verify_model(path, deep=True).problems == (
        "model.bin: SHA-256 differs from the installed file",)
    with pytest.raises(ModelError, match=r"already exists; pass --force to replace it$"):
        install_whisper(src, tmp_path / "models")


def test_a_zip_with_a_top_folder_installs_and_a_catalogue_name_must_match(tmp_path: Path) -> None:
    archive = tmp_path / "whisper-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n, d in FILES.items():
            zf.writestr(f"faster-whisper-small/{n}", d)
    with pytest.raises(ChecksumError) as err:
        install_whisper(archive, tmp_path / "models")  # named whisper-small, but not its files
    assert str(err.value) == "whisper-small.zip is not whisper-small: model.bin: 3000 bytes, expected 483546902; " \
                             "config.json: 8 bytes, expected 2370; tokenizer.json: 2 bytes, expected 2203239; " \
                             "vocabulary.txt: 4 bytes, expected 459861"
    assert [p.name for p in (tmp_path / "models").iterdir()] == []  # nothing left behind
    path = install_whisper(archive, tmp_path / "models", "whisper-mine")
    assert check_against(path, spec_of(FILES)) == []
    broken = folder_of(tmp_path / "broken", {k: v for k, v in FILES.items() if k != "tokenizer.json"})
    with pytest.raises(ModelInvalidError, match=r"^broken: tokenizer.json is missing"):
        install_whisper(broken, tmp_path / "models")


def test_download_checks_every_file_and_installs(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, www = served
    for n, d in FILES.items():
        (www / n).write_bytes(d)
    spec = spec_of(FILES, base_url=url)
    path = download_whisper(spec, tmp_path / "models", tmp_path / "cache")
    assert path == tmp_path / "models" / "whisper-test" and check_against(path, spec) == []
    assert not (tmp_path / "cache" / "whisper-test.parts").exists()
    (www / "config.json").write_bytes(b'{"a": 2}')  # the mirror serves another file of the same size
    with pytest.raises(ChecksumError, match=r"config.json: SHA-256 is [0-9a-f]{64}, expected [0-9a-f]{64}; the "
                                            r"download was discarded$"):
        download_whisper(spec, tmp_path / "models", tmp_path / "cache", force=True)
    assert not (tmp_path / "cache" / "whisper-test.parts" / "config.json").exists()
    assert check_against(path, spec) == []  # the installed model is untouched


def test_ivr_models_installs_lists_and_verifies_the_real_whisper_base(tmp_path: Path, whisper_base_dir: Path) -> None:
    from ivr.cli import app

    env = {"IVR_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    result = runner.invoke(app, ["models", "install", str(whisper_base_dir)], env=env)
    assert result.exit_code == 0, result.output
    assert "installed whisper-base at " in result.output
    listed = runner.invoke(app, ["models", "list", "--json"], env=env)
    rows = {r["name"]: r for r in json.loads(listed.output)}
    assert rows["whisper-base"]["state"] == "installed" and rows["whisper-small"]["state"] == "not installed"
    verified = runner.invoke(app, ["models", "verify", "--deep", str(tmp_path / "data" / "models" / "whisper-base")],
                             env=env)
    assert verified.exit_code == 0 and "4 files match the manifest" in verified.output, verified.output
