"""Vosk model catalogue, model-directory validation and model resolution.

The catalogue pins each Mandarin model's official URL, archive size and SHA-256. `validate_model_dir` checks a
directory has the files libvosk reads (the "V2" layout: am/, conf/, graph/, optional ivector/, rescore/, rnnlm/)
and names the first missing one. `resolve_model` picks the model directory by a fixed order: explicit flag >
`IVR_VOSK_MODEL` > configuration > the default model in the models directory. The caller passes those values in:
this module never reads the environment.

Downloading and installing live in `asr.download`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asr.errors import ModelError, ModelInvalidError, ModelNotFoundError

__all__ = [
    "ModelSpec", "CATALOGUE", "DEFAULT_MODEL",
    "ResolvedModel", "InstalledModel", "MANIFEST_NAME", "catalogue_entry", "validate_model_dir",
    "resolve_model", "installed_models", "how_to_get", "read_manifest", "model_tree_problem", "VerifyReport",
    "verify_model", "file_sha256", "whisper_model_problem", "WHISPER_FILES",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".ivr-model.json"
"""Written into a model directory by the installer: source, archive SHA-256 and the size of every file."""

_FST_MAGIC = 2125659606
_FST_HAS_OSYMBOLS = 0x2


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable model: where it comes from and what the archive must be."""

    name: str
    url: str
    archive_bytes: int
    archive_sha256: str | None  # None: not published; a deployer pins it before `ivr models download` trusts it
    unpacked_bytes: int  # approximate, for the free-space check and the listing
    description: str


CATALOGUE: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="vosk-model-small-cn-0.22",
            url="https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
            archive_bytes=43_898_754,
            archive_sha256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
            unpacked_bytes=70_000_000,
            description="Mandarin, small: several streams per core",
        ),
        ModelSpec(
            name="vosk-model-cn-0.22",
            url="https://alphacephei.com/vosk/models/vosk-model-cn-0.22.zip",
            archive_bytes=1_358_736_686,
            archive_sha256="7f5580bf7ca3d9e8ce8be68337378950ed78ef974df7a7d4ead8dbe32bec2fa1",
            unpacked_bytes=2_150_000_000,
            description="Mandarin, large: more accurate, needs several GB of RAM",
        ),
    )
}

DEFAULT_MODEL = "vosk-model-small-cn-0.22"


def catalogue_entry(name: str) -> ModelSpec:
    """The catalogue entry called `name`, or ModelError listing the known names."""
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(sorted(CATALOGUE))
        raise ModelError(f"unknown model {name!r}: the catalogue has {known}") from None


def how_to_get(name: str = DEFAULT_MODEL) -> str:
    """The one sentence telling an operator how to install a model."""
    if name in CATALOGUE:
        return (f"get it with `ivr models download {name}`, or on an offline site "
                f"`ivr models install ZIP` with the zip copied from {CATALOGUE[name].url}")
    return "install one with `ivr models download NAME` or `ivr models install ZIP`"


# -- validation ------------------------------------------------------------------------------------------------

def _fst_has_output_symbols(path: Path) -> bool | None:
    """True/False from an OpenFst binary header's flags; None when the file is not an OpenFst binary."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    try:
        (magic,) = struct.unpack_from("<i", head, 0)
        if magic != _FST_MAGIC:
            return None
        pos = 4
        for _ in range(2):  # fst type, arc type: int32 length + bytes
            (n,) = struct.unpack_from("<i", head, pos)
            if not 0 < n < 256:
                return None
            pos += 4 + n
        _version, flags = struct.unpack_from("<ii", head, pos)
    except struct.error:
        return None
    return bool(flags & _FST_HAS_OSYMBOLS)


class _Problem(Exception):
    """Internal: what is wrong with a model tree, without the directory name (callers add it)."""


def _require(root: Path, rel: str, why: str) -> None:
    p = root / rel
    if not p.is_file():
        raise _Problem(f"missing {rel} ({why})")
    if p.stat().st_size == 0:
        raise _Problem(f"{rel} is empty")


def _check_fst(root: Path, rel: str) -> bool:
    """Require `rel` to be an OpenFst binary; return whether it carries the word symbol table."""
    _require(root, rel, "decoding graph")
    symbols = _fst_has_output_symbols(root / rel)
    if symbols is None:
        raise _Problem(f"{rel} is not an OpenFst binary file")
    return symbols


def model_tree_problem(root: Path) -> str | None:
    """What keeps the tree at `root` from loading in libvosk ("missing graph/Gr.fst (...)"), or None if nothing."""
    try:
        _check_tree(root)
    except _Problem as exc:
        return str(exc)
    return None


def _check_tree(root: Path) -> None:
    _require(root, "am/final.mdl", "acoustic model")
    _require(root, "conf/model.conf", "decoder settings")
    if not (root / "conf/mfcc.conf").is_file() and (root / "conf/fbank.conf").is_file():
        _require(root, "conf/fbank.conf", "feature settings")
    else:
        _require(root, "conf/mfcc.conf", "feature settings")
    if (root / "graph/HCLG.fst").exists():
        has_words = _check_fst(root, "graph/HCLG.fst")
    elif (root / "graph/HCLr.fst").exists() or (root / "graph/Gr.fst").exists():
        _check_fst(root, "graph/HCLr.fst")
        has_words = _check_fst(root, "graph/Gr.fst")
        _require(root, "graph/disambig_tid.int", "disambiguation symbols of the lookahead graph")
    else:
        raise _Problem("missing graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)")
    if not has_words:
        _require(root, "graph/words.txt", "word table; the graph does not carry one")
    if (root / "ivector/final.ie").exists():
        for rel in ("ivector/final.ie", "ivector/final.dubm", "ivector/final.mat", "ivector/global_cmvn.stats",
                    "ivector/online_cmvn.conf", "ivector/splice.conf"):
            _require(root, rel, "i-vector extractor")
    if (root / "rescore/G.carpa").exists():
        _require(root, "rescore/G.fst", "rescoring language model")
    if (root / "rnnlm/final.raw").exists():
        for rel in ("rnnlm/word_feats.txt", "rnnlm/feat_embedding.final.mat", "rnnlm/special_symbol_opts.conf"):
            _require(root, rel, "RNNLM rescoring")


WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")
"""What a CTranslate2 Whisper folder must hold (vocabulary.json or vocabulary.txt beside them)."""


def whisper_model_problem(folder: Path) -> str | None:
    """What is missing from a CTranslate2 Whisper folder (for faster-whisper), or None when it looks complete."""
    if not folder.is_dir():
        return f"{folder} is not a directory"
    for name in WHISPER_FILES:
        if not (folder / name).is_file():
            return f"{folder}: {name} is missing (not a CTranslate2 Whisper model)"
    if not ((folder / "vocabulary.json").is_file() or (folder / "vocabulary.txt").is_file()):
        return f"{folder}: vocabulary.json is missing (not a CTranslate2 Whisper model)"
    return None


def validate_model_dir(path: str | Path) -> Path:
    """Check that `path` holds the files libvosk needs to load a model; return it resolved.

    Raises ModelNotFoundError when there is no such directory, ModelInvalidError naming the first missing, empty
    or malformed file otherwise. Only the current layout (with am/final.mdl) is accepted; the checks follow what
    libvosk reads at load time: am/final.mdl, conf/model.conf, conf/mfcc.conf (or conf/fbank.conf),
    graph/HCLG.fst or graph/HCLr.fst + graph/Gr.fst + graph/disambig_tid.int, graph/words.txt unless the graph
    carries its word table, and the companions of optional parts (ivector/final.ie, rescore/G.carpa,
    rnnlm/final.raw).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise ModelNotFoundError(f"{root}: no such model directory")
    if not root.is_dir():
        raise ModelInvalidError(f"{root}: not a Vosk model: not a directory")
    root = root.resolve()
    problem = model_tree_problem(root)
    if problem:
        raise ModelInvalidError(f"{root}: not a Vosk model: {problem}")
    return root


# -- resolution ------------------------------------------------------------------------------------------------

Source = Literal["flag", "env", "config", "default"]


@dataclass(frozen=True)
class ResolvedModel:
    """The model directory to load and which setting chose it."""

    path: Path
    source: Source
    requested: str


def _candidate(value: str, models_dir: Path) -> Path:
    """A setting is a directory path, or a bare name looked up in the models directory."""
    p = Path(value).expanduser()
    if p.is_absolute() or "/" in value or value.startswith("."):
        return p
    return models_dir / value


_SOURCE_TEXT = {
    "flag": "--model",
    "env": "IVR_VOSK_MODEL",
    "config": "the configured vosk_model",
    "default": "the default model",
}


def resolve_model(models_dir: str | Path, flag: str | None = None, env: str | None = None,
                  config: str | None = None, default: str = DEFAULT_MODEL) -> ResolvedModel:
    """Pick and validate the model directory: explicit flag > IVR_VOSK_MODEL value > config > data-dir default.

    Each value is a model directory or a catalogue/installed model name (looked up in `models_dir`). The first
    value that is set wins; a set value that does not point at a valid model is an error (no silent fallback).
    Raises ModelNotFoundError (with how to get the model) or ModelInvalidError (naming the missing file).
    """
    mdir = Path(models_dir).expanduser()
    choices: list[tuple[Source, str | None]] = [("flag", flag), ("env", env), ("config", config),
                                                 ("default", default)]
    source, value = next((s, v) for s, v in choices if v)
    assert value is not None
    path = _candidate(value, mdir)
    if not path.exists():
        name = path.name
        raise ModelNotFoundError(
            f"Vosk model {value!r} (from {_SOURCE_TEXT[source]}) not found at {path}: {how_to_get(name)}")
    resolved = validate_model_dir(path)
    logger.debug("model %s chosen by %s", resolved, source)
    return ResolvedModel(path=resolved, source=source, requested=value)


# -- listing ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstalledModel:
    """A directory in the models directory, with its validation verdict and install manifest (if any)."""

    name: str
    path: Path
    valid: bool
    problem: str | None
    manifest: dict[str, object] | None


def read_manifest(path: Path) -> dict[str, object] | None:
    """The installer's manifest in a model directory, or None when absent or unreadable."""
    try:
        data = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def installed_models(models_dir: str | Path) -> list[InstalledModel]:
    """Every visible directory in `models_dir` (hidden ones are the installer's work areas), sorted by name."""
    mdir = Path(models_dir).expanduser()
    if not mdir.is_dir():
        return []
    found = []
    for p in sorted(mdir.iterdir()):
        if p.name.startswith(".") or not p.is_dir():
            continue
        try:
            validate_model_dir(p)
            valid, problem = True, None
        except ModelError as exc:
            valid, problem = (True, None) if whisper_model_problem(p) is None else (False, str(exc))  # or Whisper
        found.append(InstalledModel(name=p.name, path=p, valid=valid, problem=problem, manifest=read_manifest(p)))
    return found


# -- verification ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `verify_model`: the layout check plus, when the installer left a manifest, file checks."""

    path: Path
    problems: tuple[str, ...]
    files_checked: int
    has_manifest: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_model(path: str | Path, deep: bool = False, chunk: int = 1 << 20) -> VerifyReport:
    """Validate the layout, then compare every file against the install manifest (sizes; SHA-256 when `deep`).

    A model copied in by hand has no manifest: only the layout is checked. Never raises for a broken model;
    raises ModelNotFoundError when the directory does not exist.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ModelNotFoundError(f"{root}: no such model directory")
    root = root.resolve()
    problems: list[str] = []
    layout = model_tree_problem(root)
    if layout and whisper_model_problem(root) is None:
        layout = None  # a CTranslate2 Whisper folder
    if layout:
        problems.append(layout)
    manifest = read_manifest(root)
    checked = 0
    files = manifest.get("files") if manifest else None
    if isinstance(files, dict):
        for rel, meta in sorted(files.items()):
            p = root / rel
            if not p.is_file():
                problems.append(f"missing {rel}")
                continue
            size, digest = meta if isinstance(meta, list) and len(meta) == 2 else (None, None)
            if p.stat().st_size != size:
                problems.append(f"{rel}: size {p.stat().st_size}, expected {size}")
            elif deep and digest != file_sha256(p, chunk):
                problems.append(f"{rel}: SHA-256 differs from the installed file")
            checked += 1
    return VerifyReport(path=root, problems=tuple(problems), files_checked=checked,
                        has_manifest=manifest is not None)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
