"""Model download (HTTP with Range resume and a pinned SHA-256) and atomic install from a zip.

Nothing here runs unless asked: the `ivr models` command calls it; library code never downloads.

A download is written to `<cache_dir>/<name>.zip.part` and resumed from there with an HTTP Range request when
interrupted; once complete its SHA-256 is checked against the catalogue. Installing unpacks into a hidden work
directory inside the models directory (`.installing-<name>-<pid>-...`), checks the tree is a Vosk model, writes
a manifest (size and SHA-256 of every file) and renames the tree into place in one step. On any failure the work
directory is removed, so the models directory is left exactly as it was and no half-installed model is visible.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import ModelError, ModelInvalidError
from .model_files import MANIFEST_NAME, ModelSpec, file_sha256, model_tree_problem, validate_model_dir

__all__ = [
    "DownloadError", "ChecksumError", "ArchiveError", "ProgressCallback", "fetch", "install_archive",
    "download_model", "partial_path", "swap_in", "exclusive",
]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, "int | None"], None]
"""Called as progress(phase, done, total) with phase "download", "verify" or "unpack"; total may be unknown."""

_CHUNK = 1 << 16
_WORK_PREFIX = ".installing-"
_OLD_PREFIX = ".replaced-"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(ModelError):
    """The archive could not be fetched completely; a partial file is kept for resuming."""


class ChecksumError(ModelError):
    """The archive's SHA-256 is not the pinned one; the file was discarded."""


class ArchiveError(ModelError):
    """The zip is corrupt, unsafe or does not fit on the disk."""


def _noop(phase: str, done: int, total: int | None) -> None:
    return None


def partial_path(cache_dir: str | Path, name: str) -> Path:
    """Where the download of model `name` is kept until it is complete and checked."""
    return Path(cache_dir) / f"{name}.zip.part"


# -- HTTP ------------------------------------------------------------------------------------------------------

def fetch(url: str, dest: str | Path, expected_bytes: int | None = None,
          progress: ProgressCallback | None = None, timeout: float = 60.0) -> Path:
    """Download `url` to `dest`, resuming from the bytes already in `dest` with an HTTP Range request.

    A server that ignores Range (200 instead of 206) restarts the file from zero. When the transfer ends early
    DownloadError says how much arrived and the partial file is kept, so calling again resumes it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    report = progress or _noop
    have = dest.stat().st_size if dest.exists() else 0
    if expected_bytes is not None and have > expected_bytes:
        logger.warning("%s is larger than the expected %d bytes; starting again", dest, expected_bytes)
        dest.unlink()
        have = 0
    if expected_bytes is not None and have == expected_bytes:
        report("download", have, expected_bytes)
        return dest
    headers = {"User-Agent": "ivr-models/1", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return _after_416(exc, dest, have, expected_bytes, url, report)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with response:
        status = response.status
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"), url)
            if start != have:
                raise DownloadError(f"{url}: server resumed at byte {start}, asked for byte {have}")
            mode = "ab"
        elif status == 200:
            if have:
                logger.info("%s: server ignored the Range request; downloading from the start", url)
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {status}")
        if total is not None and expected_bytes is not None and total != expected_bytes:
            raise DownloadError(f"{url}: server offers {total} bytes, the catalogue says {expected_bytes}")
        total = total if total is not None else expected_bytes
        done = have
        report("download", done, total)
        try:
            with dest.open(mode) as out:
                while block := response.read(_CHUNK):
                    out.write(block)
                    done += len(block)
                    report("download", done, total)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(
                f"{url}: transfer interrupted after {done} of {total or '?'} bytes ({exc}); "
                f"run the command again to resume") from None
    if total is not None and done < total:
        raise DownloadError(
            f"{url}: transfer ended after {done} of {total} bytes; run the command again to resume")
    return dest


def _parse_content_range(value: str | None, url: str) -> tuple[int, int | None]:
    m = _CONTENT_RANGE.match(value or "")
    if not m:
        raise DownloadError(f"{url}: 206 response without a usable Content-Range ({value!r})")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


def _after_416(exc: urllib.error.HTTPError, dest: Path, have: int, expected: int | None, url: str,
               report: ProgressCallback) -> Path:
    """Range not satisfiable: the partial file is already complete, or it is stale and must go."""
    m = re.match(r"bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
    total = int(m.group(1)) if m else expected
    if total is not None and have == total:
        report("download", have, total)
        return dest
    dest.unlink()
    raise DownloadError(f"{url}: the partial download did not match the server's file and was discarded; "
                        f"run the command again")


# -- zip install -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    members: tuple[zipfile.ZipInfo, ...]
    prefix: str  # "" for a flat archive, else the single top-level directory
    total_bytes: int


def _plan(zf: zipfile.ZipFile, label: str) -> _Plan:
    members = []
    tops = set()
    for info in zf.infolist():
        name = info.filename
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or (parts and parts[0].endswith(":")):
            raise ArchiveError(f"{label}: unsafe path in archive: {name!r}")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"{label}: archive contains a symbolic link: {name!r}")
        if not parts or parts[0] == "__MACOSX":
            continue
        tops.add(parts[0])
        members.append(info)
    if not members:
        raise ArchiveError(f"{label}: the archive is empty")
    _check_layout(members, label)
    prefix = ""
    if len(tops) == 1:
        (top,) = tops
        if all(m.filename != top for m in members if not m.is_dir()):
            prefix = top
    total = sum(m.file_size for m in members if not m.is_dir())
    return _Plan(members=tuple(members), prefix=prefix, total_bytes=total)


def _check_layout(members: list[zipfile.ZipInfo], label: str) -> None:
    """Every path is one file or one folder: a name that is both, or a file listed twice, cannot be unpacked
    faithfully, so the archive is refused before anything is written."""
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    for info in members:
        path = PurePosixPath(info.filename)
        folders.update(path.parents)
        if info.is_dir():
            folders.add(path)
        elif path in files:
            raise ArchiveError(f"{label}: {info.filename!r} is in the archive twice")
        else:
            files.add(path)
    both = sorted(files & folders)
    if both:
        raise ArchiveError(f"{label}: {str(both[0])!r} is both a file and a folder in the archive")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_work(models_dir: Path) -> None:
    """Remove work directories left by installers that were killed (their process is gone)."""
    for p in models_dir.glob(f"{_WORK_PREFIX}*"):
        m = re.match(rf"{re.escape(_WORK_PREFIX)}.*-(\d+)-[^-]+$", p.name)
        if m and not _pid_alive(int(m.group(1))):
            logger.info("removing %s left by an interrupted install", p)
            shutil.rmtree(p, ignore_errors=True)


def _extract(zf: zipfile.ZipFile, plan: _Plan, work: Path, label: str,
             report: ProgressCallback) -> dict[str, list[object]]:
    """Extract into `work` (CRC checked by zipfile), returning {path in model: [size, sha256]}."""
    files: dict[str, list[object]] = {}
    done = 0
    report("unpack", 0, plan.total_bytes)
    for info in plan.members:
        rel = PurePosixPath(info.filename)
        if plan.prefix:
            rel = PurePosixPath(*rel.parts[1:])
        target = work.joinpath(*rel.parts) if rel.parts else work
        h = hashlib.sha256()
        size = 0
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("xb") as dst:  # each file once (see _check_layout)
                while block := src.read(_CHUNK):
                    dst.write(block)
                    h.update(block)
                    size += len(block)
                    done += len(block)
                    report("unpack", done, plan.total_bytes)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError,
                NotImplementedError) as exc:
            raise ArchiveError(f"{label}: corrupt archive at {info.filename!r} ({exc})") from None
        except OSError as exc:
            raise ArchiveError(f"{label}: cannot unpack {info.filename!r} ({exc})") from None
        files[str(rel)] = [size, h.hexdigest()]
    return files


def install_archive(archive: str | Path, models_dir: str | Path, name: str | None = None, *,
                    expected_sha256: str | None = None, source: str | None = None, force: bool = False,
                    progress: ProgressCallback | None = None) -> Path:
    """Install a Vosk model zip into `models_dir` atomically; return the installed directory.

    The model's name is `name`, else the archive's single top-level directory, else the zip's file stem. With
    `expected_sha256` the archive is checked first. An existing model of that name is kept unless `force`.
    Raises ChecksumError, ArchiveError or ModelInvalidError (naming the missing file); the models directory is
    then left exactly as it was.
    """
    archive = Path(archive)
    report = progress or _noop
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such file")
    size = archive.stat().st_size
    report("verify", 0, size)
    digest = file_sha256(archive)
    report("verify", size, size)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ChecksumError(f"{archive.name}: SHA-256 is {digest}, expected {expected_sha256.lower()}")
    return _install(archive, models_dir, name, digest=digest, source=source, force=force, report=report,
                    label=archive.name)


def _install(archive: Path, models_dir: str | Path, name: str | None, *, digest: str, source: str | None,
             force: bool, report: ProgressCallback, label: str) -> Path:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{label}: not a readable zip archive ({exc})") from None
    mdir = Path(models_dir).expanduser()
    created_mdir = not mdir.exists()
    with zf:
        plan = _plan(zf, label)
        model_name = name or plan.prefix or archive.name.removesuffix(".part").removesuffix(".zip")
        if not model_name or model_name.startswith(".") or "/" in model_name:
            raise ArchiveError(f"{label}: cannot use {model_name!r} as a model name")
        target = mdir / model_name
        if target.exists() and not force:
            raise ModelError(f"{target} already exists; pass --force to replace it")
        mdir.mkdir(parents=True, exist_ok=True)
        try:
            _clean_stale_work(mdir)
            free = shutil.disk_usage(mdir).free
            if plan.total_bytes > free:
                raise ArchiveError(f"{label}: unpacking needs {plan.total_bytes} bytes, {mdir} has {free} free")
            work = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{model_name}-{os.getpid()}-", dir=mdir))
            try:
                files = _extract(zf, plan, work, label, report)
                problem = model_tree_problem(work)
                if problem:
                    raise ModelInvalidError(f"{label}: not a Vosk model: {problem}")
                manifest = {
                    "name": model_name,
                    "source": source or str(archive.resolve()),
                    "archive_sha256": digest,
                    "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "files": files,
                }
                (work / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, ensure_ascii=False),
                                                  encoding="utf-8")
                swap_in(work, target)
            finally:
                if work.exists():
                    shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            if created_mdir:
                with contextlib.suppress(OSError):
                    mdir.rmdir()
            raise
    logger.info("installed model %s at %s", model_name, target)
    return validate_model_dir(target)


def swap_in(work: Path, target: Path) -> None:
    """Rename the finished tree into place; an old model of that name is moved aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f"{_OLD_PREFIX}{target.name}-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(work, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- the whole job ---------------------------------------------------------------------------------------------

def download_model(spec: ModelSpec, models_dir: str | Path, cache_dir: str | Path, *, url: str | None = None,
                   sha256: str | None = None, force: bool = False, progress: ProgressCallback | None = None,
                   timeout: float = 60.0) -> Path:
    """Download `spec` (or a mirror `url`), check its pinned SHA-256 and install it; return the model directory.

    `sha256` overrides the catalogue's pin (for a deployer whose entry has none). Without any pin nothing is
    downloaded. A checksum mismatch discards the download; an interrupted one is resumed by the next call.
    """
    pin = (sha256 or spec.archive_sha256 or "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", pin):
        raise ChecksumError(f"{spec.name}: no SHA-256 pinned for the archive; pass the published checksum "
                            f"(--sha256) before downloading")
    target = Path(models_dir).expanduser() / spec.name
    if target.exists() and not force:
        raise ModelError(f"{target} already exists; pass --force to replace it")
    source = url or spec.url
    part = partial_path(cache_dir, spec.name)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with exclusive(part.with_name(part.name + ".lock"), spec.name):
        return _download_locked(spec, models_dir, cache_dir, part, source, pin, force, progress, timeout)


@contextlib.contextmanager
def exclusive(lock_path: Path, name: str) -> Iterator[None]:
    """Hold an advisory lock so that two downloads of one model never write the same partial file."""
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"{name}: another download of this model is in progress") from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)  # the file stays: unlinking it would race a new locker


def _download_locked(spec: ModelSpec, models_dir: str | Path, cache_dir: str | Path, part: Path, source: str,
                     pin: str, force: bool, progress: ProgressCallback | None, timeout: float) -> Path:
    needed = spec.archive_bytes - (part.stat().st_size if part.exists() else 0)
    free = shutil.disk_usage(cache_dir).free
    if needed > free:
        raise DownloadError(f"{spec.name}: the download needs {needed} more bytes, {cache_dir} has {free} free")
    fetch(source, part, spec.archive_bytes, progress=progress, timeout=timeout)
    report = progress or _noop
    size = part.stat().st_size
    report("verify", 0, size)
    digest = file_sha256(part)
    report("verify", size, size)
    if digest != pin:
        part.unlink()
        raise ChecksumError(f"{source}: SHA-256 is {digest}, expected {pin}; the download was discarded")
    path = _install(part, models_dir, spec.name, digest=digest, source=source, force=force, report=report,
                    label=source.rsplit("/", 1)[-1] or f"{spec.name}.zip")
    part.unlink()
    return path
