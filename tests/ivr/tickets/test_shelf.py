"""Finished recordings copied to the centre's shared folder: checked against the ticket's SHA-256 before they are
published, never half a file, a copy that could not be made (the shared disk full: a real small tmpfs) made by the
next sweep."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from ivr.tickets.shelf import RecordingShelf, ShelfError


def recording(root: Path, name: str, size: int = 96_000) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytes(range(256)) * (size // 256)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_a_finished_recording_is_copied_whole_and_checked(tmp_path: Path) -> None:
    local, shared = tmp_path / "local", tmp_path / "shared"
    sha = recording(local, "2026-12-06/2026120600001.wav")
    shelf = RecordingShelf(local, shared)
    try:
        assert shelf.publish_later("2026-12-06/2026120600001.wav", sha).result() is True
        copy = shared / "2026-12-06" / "2026120600001.wav"
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha
        assert not (local / "2026-12-06" / "2026120600001.wav").exists()  # checked there: the node's copy is dropped
        recording(local, "2026-12-06/2026120600001.wav")  # a node's copy left by a crash before it was dropped
        assert shelf.publish("2026-12-06/2026120600001.wav", sha) == copy  # already there: nothing copied ...
        assert not (local / "2026-12-06" / "2026120600001.wav").exists()  # ... and the node's copy dropped
        assert [p.name for p in copy.parent.iterdir()] == [copy.name]
    finally:
        shelf.close()


def test_a_copy_that_is_not_the_tickets_recording_is_not_published(tmp_path: Path) -> None:
    local, shared = tmp_path / "local", tmp_path / "shared"
    recording(local, "d/1.wav")
    shelf = RecordingShelf(local, shared)
    with pytest.raises(ShelfError) as err:
        shelf.publish("d/1.wav", "0" * 64)
    actual = hashlib.sha256((local / "d" / "1.wav").read_bytes()).hexdigest()
    assert str(err.value) == f"recording d/1.wav: the copy's SHA-256 {actual} is not the ticket's {'0' * 64}"
    assert list((shared / "d").iterdir()) == []  # no file, no part left
    assert (local / "d" / "1.wav").is_file()  # the node keeps the only copy
    with pytest.raises(ShelfError, match=r"^recording \.\./x\.wav: the path leaves the recordings folder$"):
        shelf.publish("../x.wav", actual)
    shelf.close()


def test_a_full_shared_disk_leaves_the_recording_here_and_the_next_sweep_copies_it(
        tmp_path: Path, small_disks, caplog: pytest.LogCaptureFixture) -> None:
    local = tmp_path / "local"
    shared = small_disks.mount(tmp_path / "shared", "64k")
    sha = recording(local, "d/2.wav", 96_000)  # larger than the shared disk
    shelf = RecordingShelf(local, shared)
    try:
        with caplog.at_level(logging.ERROR):
            assert shelf.publish_later("d/2.wav", sha).result() is False
        assert [r.getMessage() for r in caplog.records] == [
            f"recording d/2.wav not copied to the shared folder {shared} (disk full); the next sweep tries again"]
        assert list((shared / "d").iterdir()) == []  # no part file left on the full disk
        assert (local / "d" / "2.wav").is_file()
        small_disks.unmount_all()
        shared.mkdir(exist_ok=True)  # the shared folder back, with room
        assert shelf.sweep_folder(lambda name: sha if name == "d/2.wav" else None).result() is True
        assert hashlib.sha256((shared / "d" / "2.wav").read_bytes()).hexdigest() == sha
        assert not (local / "d" / "2.wav").exists()
    finally:
        shelf.close()
