"""FlowRegistry: edited flows serve new calls, calls in progress keep theirs, bad edits are rejected."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from ivr.flow import FlowError
from ivr.flow.registry import FlowRegistry

FLOW = """\
name: t
start: hello
nodes:
  hello: {type: say, prompt: %s, next: bye}
  bye: {type: hangup}
"""
PROMPTS = {"a", "b"}


def edit(path: Path, text: str, bump_ns: int) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump_ns))  # coarse file-system clocks


def test_reload_for_new_calls_keeps_old_flow_objects(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FLOW % "a")
    reg = FlowRegistry(path, PROMPTS)
    in_progress = reg.current()
    assert reg.current() is in_progress  # unchanged file: no reload
    edit(path, FLOW % "b", 1_000_000)
    new = reg.current()
    assert new.nodes["hello"].prompt == "b" and new.digest != in_progress.digest
    assert in_progress.nodes["hello"].prompt == "a"  # the call that started before keeps its version
    assert reg.reloads == 1


def test_touch_without_change_does_not_reload(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FLOW % "a")
    reg = FlowRegistry(path, PROMPTS)
    first = reg.current()
    edit(path, FLOW % "a", 2_000_000)
    assert reg.current() is first and reg.reloads == 0


def test_bad_edit_is_rejected_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FLOW % "a")
    reg = FlowRegistry(path, PROMPTS)
    good = reg.current()
    edit(path, FLOW % "nosuch", 3_000_000)
    with caplog.at_level(logging.ERROR, logger="ivr.flow.registry"):
        assert reg.current() is good
    expected = (f"{path}:4: node 'hello': prompt 'nosuch' is not in the prompt catalogue; keeping version "
                f"{good.digest[:12]}")
    assert reg.last_error == expected
    assert caplog.records[0].getMessage() == "flow edit rejected: " + expected
    edit(path, FLOW % "b", 4_000_000)  # fixed: the next call gets it
    assert reg.current().nodes["hello"].prompt == "b" and reg.last_error == ""


def test_flow_saved_as_gbk_is_rejected_once_and_the_last_good_version_serves(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("# 欢迎\n" + FLOW % "a", encoding="utf-8")
    reg = FlowRegistry(path, PROMPTS)
    good = reg.current()
    path.write_bytes(("# 欢迎\n" + FLOW % "b").encode("gbk"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 6_000_000))
    with caplog.at_level(logging.ERROR, logger="ivr.flow.registry"):
        assert [reg.current() for _ in range(3)] == [good] * 3  # every new call keeps the good version
    assert [r.getMessage() for r in caplog.records] == [
        f"flow edit rejected: {path}:1: not UTF-8 text (byte 0xbb); save it as UTF-8; keeping version "
        f"{good.digest[:12]}"]


def test_deleted_file_keeps_the_last_version(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FLOW % "a")
    reg = FlowRegistry(path, PROMPTS)
    good = reg.current()
    path.unlink()
    assert reg.current() is good and "cannot read the flow" in reg.last_error


def test_first_version_must_be_good(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FLOW % "nosuch")
    with pytest.raises(FlowError):
        FlowRegistry(path, PROMPTS)


def test_call_in_progress_keeps_its_version_while_new_calls_get_the_edit(tmp_path: Path, catalogue, library) -> None:
    import asyncio

    from flow_harness import run_call

    from ivr.channel.base import CallInfo
    from ivr.channel.file import FileChannel, parse_script
    from ivr.flow.runner import FlowRunner
    from ivr.media.callio import CallIO
    from ivr.tickets.sink import StoreSink
    from ivr.tickets.store import TicketStore

    path = tmp_path / "f.yaml"
    path.write_text(FLOW % "welcome")
    reg = FlowRegistry(path, catalogue.prompts)
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db")

    async def both():
        old_flow = reg.current()
        channel = FileChannel(parse_script(""), CallInfo("old", "1"))
        runner = FlowRunner(old_flow, CallIO(channel, None), library, StoreSink(store, tmp_path / "rec"))
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0)  # the old call is under way
        edit(path, FLOW % "goodbye", 5_000_000)
        new = await asyncio.to_thread(run_call, reg.current(), library, "", tmp_path / "new")
        return await task, new.record, old_flow

    old_record, new_record, old_flow = asyncio.run(both())
    assert old_record.flow_digest == old_flow.digest != new_record.flow_digest
    assert reg.current().nodes["hello"].prompt == "goodbye"
