"""Recordings across nodes: once a call ends, its WAV is copied from the node's own disk to the centre's shared
folder (a mount every node has, `recordings_shared_dir`), at the same name, and any node's console plays it there.

The node records to its own disk as the caller speaks (nothing on the media path waits for the network); the copy
is made after the ticket holds the recording's SHA-256, off the call's loop, into a temporary file that is checked
against that checksum, synced and only then renamed into place, so a reader never sees half a file and a copy that
differs is never published. A copy that fails (the mount away) is made again by the next sweep (at start-up, and
after every later recording). What is lost with a node is only a recording still in progress.

The node's own copy is dropped as soon as the shared copy is checked (read back from the shared folder, its SHA-256
the ticket's), not aged out: the shared folder is where the centre keeps, backs up and expires recordings, every
reader (the consoles, the transcription workers, `ivr tickets verify`) falls back to it, and a node's disk then
holds only what is being recorded or is not yet safely shared, so it never fills with copies nobody needs (some
60 GB a day across a 12345 centre) and needs no expiry of its own. A copy that could not be checked keeps the node's
own until a later sweep publishes it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ivr.errors import IvrError
from ivr.storage import problem

__all__ = ["RecordingShelf", "ShelfError", "CHUNK"]

log = logging.getLogger(__name__)

CHUNK = 1 << 16


class ShelfError(IvrError):
    """A recording could not be put on the shared shelf as the ticket knows it."""


class RecordingShelf:
    """Copies finished recordings from `local` (the node's recordings folder) to `shared` (the centre's)."""

    def __init__(self, local: Path, shared: Path) -> None:
        self.local, self.shared = Path(local), Path(shared)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shelf")
        self._lock = threading.Lock()
        self._waiting: dict[str, str] = {}  # name -> checksum, copies not made yet

    def publish(self, name: str, sha256: str) -> Path:
        """Copy `name` (relative to both folders) to the shared folder unless it is there already, then drop the
        node's own copy; raise ShelfError (keeping the node's copy) when the copy is not the recording the ticket's
        checksum names."""
        target = self._inside(self.shared, name)
        source = self._inside(self.local, name)
        if target.is_file() and _digest(target) == sha256:
            source.unlink(missing_ok=True)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        digest = hashlib.sha256()
        try:
            with source.open("rb") as src, part.open("xb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            if digest.hexdigest() != sha256:
                raise ShelfError(f"recording {name}: the copy's SHA-256 {digest.hexdigest()} is not the ticket's "
                                 f"{sha256}")
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        _sync_dir(target.parent)
        if _digest(target) != sha256:  # read back from the shared folder before the node lets go of its own
            raise ShelfError(f"recording {name}: the shared copy does not read back as the ticket's SHA-256 {sha256}")
        source.unlink()
        return target

    def publish_later(self, name: str, sha256: str) -> Future[bool]:
        """Publish off the caller's loop; a failure is logged and left to the next sweep. True when published."""
        with self._lock:
            self._waiting[name] = sha256
        return self._worker.submit(self._publish_waiting)

    def sweep(self, finished: Iterable[tuple[str, str]]) -> Future[bool]:
        """Publish the finished recordings (name, checksum) the shared folder lacks (after a restart, a mount that
        was away)."""
        with self._lock:
            for name, sha256 in finished:
                if not (self.shared / name).is_file():
                    self._waiting.setdefault(name, sha256)
        return self._worker.submit(self._publish_waiting)

    def sweep_folder(self, finished: Callable[[str], str | None]) -> Future[bool]:
        """Publish what this node's folder holds and the shared one lacks: `finished(name)` is the checksum of a
        finished recording (None: still being recorded, or no ticket's)."""
        found = []
        for path in sorted(self.local.glob("*/*.wav")):
            name = path.relative_to(self.local).as_posix()
            if not (self.shared / name).is_file() and (sha256 := finished(name)):
                found.append((name, sha256))
        return self.sweep(found)

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    def _publish_waiting(self) -> bool:
        with self._lock:
            todo, self._waiting = self._waiting, {}
        done = True
        for name, sha256 in todo.items():
            try:
                self.publish(name, sha256)
            except (OSError, ShelfError) as exc:
                done = False
                log.error("recording %s not copied to the shared folder %s (%s); the next sweep tries again", name,
                          self.shared, problem(exc) if isinstance(exc, OSError) else exc)
        return done

    @staticmethod
    def _inside(root: Path, name: str) -> Path:
        path = (root / name).resolve()
        if not path.is_relative_to(root.resolve()) or path == root.resolve():
            raise ShelfError(f"recording {name}: the path leaves the recordings folder")
        return path


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
