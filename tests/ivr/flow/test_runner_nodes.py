"""Confirm, set, branch and goto nodes in a small flow, with spoken yes/no from the fixtures."""
from __future__ import annotations

from pathlib import Path

from flow_harness import at, fixture, run_call

from ivr.flow import load_flow

FLOW = """\
name: nodes
start: mark
agent_node: person
nodes:
  mark: {type: set, values: {lang: zh, vip: true}, next: hours}
  hours:
    type: branch
    cases:
      - {when: "!business_hours", next: closed}
      - {when: "lang != zh", next: person}
      - {when: vip, next: jump}
    default: person
  jump: {type: goto, next: sure}
  sure: {type: confirm, prompt: confirm_digits, yes: thanks, no: bye, retries: 1}
  thanks: {type: say, prompt: complaint_thanks, next: bye}
  closed: {type: say, prompt: after_hours, next: person}
  person: {type: transfer, target: general}
  bye: {type: hangup, prompt: goodbye}
"""


def flow(tmp_path: Path, catalogue):
    path = tmp_path / "nodes.yaml"
    path.write_text(FLOW, encoding="utf-8")
    return load_flow(path, catalogue.prompts)


def test_spoken_yes_and_no(tmp_path: Path, catalogue, library, fake_engine) -> None:
    f = flow(tmp_path, catalogue)
    yes = run_call(f, library, f"say:{fixture('m08')}", tmp_path / "y", engine=fake_engine)
    assert yes.record.path == ["sure=yes", "thanks", "bye"]  # set/branch/goto are not in the path
    assert yes.record.vars == {"lang": "zh"} and "vip" in yes.record.flags
    no = run_call(f, library, f"say:{fixture('m09')}", tmp_path / "n", engine=fake_engine)
    assert no.record.path == ["sure=no", "bye"]


def test_confirm_by_key_and_failures_go_to_a_person(tmp_path: Path, catalogue, library) -> None:
    f = flow(tmp_path, catalogue)
    assert run_call(f, library, "keys:1", tmp_path / "a").record.path == ["sure=yes", "thanks", "bye"]
    failed = run_call(f, library, "keys:7; keys:8", tmp_path / "b")
    assert failed.record.path == ["sure", "person"] and failed.record.outcome == "transferred:general"


def test_branch_on_business_hours_from_the_injected_clock(tmp_path: Path, catalogue, library) -> None:
    f = flow(tmp_path, catalogue)
    night = run_call(f, library, "", tmp_path / "c", clock=at(23))
    assert night.record.path == ["closed", "person"]
