"""Flow validation: one test per rule, asserting its exact message (file, line, node, reason)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import FlowError, load_flow
from ivr.flow.loader import check_flow
from ivr.flow.model import KB_PROMPTS, Answer, Branch, Collect, Confirm, Goto, Kb, Lookup, Queue, Set
from ivr.kb import DEFAULT_THRESHOLD

REPO = Path(__file__).resolve().parents[3]
PROMPTS = {"hello", "menu", "bye", "ask", "offer", "intro"}

HEAD = """\
name: t
start: menu
agent_node: person
nodes:
  person: {type: transfer, target: general}
  bye: {type: hangup, prompt: bye}
"""


def write(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text(head + body, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    return [str(p) for p in check_flow(path, PROMPTS)[1]]


MENU = """\
  menu:
    type: menu
    prompt: menu
    on_fail: person
    options:
      a: {key: "1", next: bye}
"""


def test_every_shipped_flow_loads_and_passes_the_check(catalogue, shipped_kb) -> None:
    files = sorted((REPO / "flows").glob("*.yaml"))
    assert files
    for path in files:
        flow, found = check_flow(path, catalogue.prompts, shipped_kb.by_id)
        assert found == [], [str(p) for p in found]
        assert flow is not None and flow.nodes


def test_valid_flow_has_no_problems(tmp_path: Path) -> None:
    assert problems(write(tmp_path, MENU)) == []


def test_unknown_target(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("next: bye", "next: nowhere"))
    assert problems(path) == [f"{path}:7: node 'menu': leads to unknown node 'nowhere'"]


def test_unreachable_node(tmp_path: Path) -> None:
    path = write(tmp_path, MENU + "  lonely: {type: say, prompt: hello, next: bye}\n")
    assert problems(path) == [f"{path}:13: node 'lonely': unreachable from 'menu'"]


def test_dead_end_loop(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("next: bye", "next: loop1") + """\
      b: {key: "2", next: bye}
  loop1: {type: say, prompt: hello, next: loop2}
  loop2: {type: goto, next: loop1}
""")
    assert problems(path) == [
        f"{path}:14: node 'loop1': dead end: no path from here reaches a person or the end of the call",
        f"{path}:15: node 'loop2': dead end: no path from here reaches a person or the end of the call",
    ]


def test_duplicate_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MENU + '      b: {key: "1", next: person}\n')
    assert problems(path) == [f"{path}:13: node 'menu': options 'a' and 'b' both use key '1'"]


def test_option_on_the_repeat_key(tmp_path: Path) -> None:
    path = write(tmp_path, MENU + '      b: {key: "*", next: person}\n')
    assert problems(path) == [f"{path}:13: node 'menu': option 'b' uses key '*', the flow's repeat key"]


def test_duplicate_node_id(tmp_path: Path) -> None:
    path = write(tmp_path, MENU + "  bye: {type: hangup}\n")
    assert problems(path) == [f"{path}:13: node 'bye': defined twice (first at line 6)"]


def test_missing_prompt(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("prompt: menu", "prompt: nosuch"))
    assert problems(path) == [f"{path}:9: node 'menu': prompt 'nosuch' is not in the prompt catalogue"]


def test_out_of_range_timeout(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("on_fail: person", "on_fail: person\n    timeout_ms: 500"))
    assert problems(path) == [f"{path}:11: node 'menu': `timeout_ms` 500 ms is out of range 1000..60000 ms"]


def test_out_of_range_interdigit_timeout(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("next: bye", "next: digits") + """\
  digits: {type: collect, prompt: ask, var: n, next: bye, interdigit_ms: 90000}
""")
    assert problems(path) == [f"{path}:13: node 'digits': `interdigit_ms` 90000 ms is out of range 1000..60000 ms"]


def test_menu_without_a_way_out_after_retries(tmp_path: Path) -> None:
    head = HEAD.replace("agent_node: person\n", "")
    path = write(tmp_path, MENU.replace("    on_fail: person\n", "") + '      b: {key: "2", next: person}\n', head)
    assert problems(path) == [f"{path}:6: node 'menu': needs `on_fail` (or the flow an `agent_node`) so repeated "
                              "no-input never ends the call"]


def test_on_fail_must_not_hang_up(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("on_fail: person", "on_fail: bye"))
    assert problems(path) == [f"{path}:7: node 'menu': `on_fail` leads to hang-up 'bye'; send the caller to a "
                              "person or the elderly path"]


def test_branch_on_a_variable_never_set(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("next: bye", "next: which") + """\
  which:
    type: branch
    cases: [{when: "vip == yes", next: person}]
    default: bye
""")
    assert problems(path) == [f"{path}:13: node 'which': variable 'vip' is never set"]


def test_bad_condition(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("next: bye", "next: which") + """\
  which:
    type: branch
    cases: [{when: "a b c", next: person}]
    default: bye
""")
    assert problems(path) == [f"{path}:15: node 'which': condition 'a b c' is not `name`, `!name`, `name == value` "
                              "or `name != value`"]


def test_unknown_node_type_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MENU + "  x: {type: dance, next: bye}\n  y: {type: say, prompt: hello, nxt: bye}\n")
    assert problems(path)[:2] == [
        f"{path}:13: node 'x': unknown type 'dance'; use one of say, menu, collect, confirm, answer, lookup, record, "
        "transfer, queue, set, branch, goto, hangup, kb",
        f"{path}:14: node 'y': unknown field 'nxt' for a say node",
    ]


def test_load_flow_raises_the_first_problem_and_counts_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, MENU.replace("prompt: menu", "prompt: nosuch") + "  x: {type: goto, next: nowhere}\n")
    with pytest.raises(FlowError) as err:
        load_flow(path, PROMPTS)
    assert str(err.value) == f"{path}:9: node 'menu': prompt 'nosuch' is not in the prompt catalogue (and 1 more problem)"
    assert len(err.value.problems) == 2


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [\n")
    assert problems(bad) == [f"{bad}:2: not valid YAML (expected the node content, but found '<stream end>')"]
    assert problems(tmp_path / "none.yaml") == [f"{tmp_path / 'none.yaml'}:0: flow file not found"]


def test_all_node_kinds_build(tmp_path: Path) -> None:
    path = write(tmp_path, """\
  menu:
    type: menu
    prompt: menu
    on_fail: person
    options:
      a: {key: "1", next: flag}
  flag: {type: set, values: {vip: "yes", elderly: true}, next: route}
  route:
    type: branch
    cases: [{when: "vip == yes", next: digits}, {when: "!business_hours", next: bye}]
    default: person
  digits: {type: collect, prompt: ask, var: n, min_digits: 3, max_digits: 5, readback_prompt: intro, confirm_prompt: ask, next: sure}
  sure: {type: confirm, prompt: ask, yes: look, no: digits, on_fail: person}
  look: {type: lookup, var: n, prompt: intro, found: info, not_found: jump}
  info: {type: answer, prompt: hello, offer_prompt: offer, more: menu, agent: queue, done: bye}
  jump: {type: goto, next: queue}
  queue: {type: queue, group: elderly, priority: elderly, prompt: hello}
""")
    flow, found = check_flow(path, PROMPTS)
    assert found == []
    kinds = {nid: type(n) for nid, n in flow.nodes.items()}
    assert (kinds["flag"], kinds["route"], kinds["digits"], kinds["sure"], kinds["look"], kinds["info"],
            kinds["jump"], kinds["queue"]) == (Set, Branch, Collect, Confirm, Lookup, Answer, Goto, Queue)
    assert flow.nodes["flag"].values == (("vip", "yes"), ("elderly", True))
    assert flow.nodes["queue"].priority == "elderly" and flow.nodes["queue"].target == "elderly"


def test_no_input_retries_default_to_retries_and_may_not_exceed_them(tmp_path: Path) -> None:
    from ivr.flow.loader import load_flow

    menu = load_flow(write(tmp_path, MENU.replace("    on_fail: person\n", "    on_fail: person\n    retries: 1\n")),
                     PROMPTS).nodes["menu"]
    assert (menu.retries, menu.no_input_retries) == (1, 1)  # type: ignore[attr-defined]
    path = write(tmp_path, MENU.replace("    on_fail: person\n", "    on_fail: person\n    retries: 1\n"
                                                                 "    no_input_retries: 2\n"))
    assert problems(path) == [f"{path}:12: node 'menu': `no_input_retries` 2 is out of range 0..1"]


KB = """\
  menu:
    type: kb
    top: [a, b]
    agent: person
    done: bye
"""


def kb_problems(path: Path) -> list[str]:
    return [str(p) for p in check_flow(path, PROMPTS | set(KB_PROMPTS), {"a", "b", "c"})[1]]


def test_kb_node_builds_with_its_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, KB)
    assert kb_problems(path) == []
    node = load_flow(path, PROMPTS | set(KB_PROMPTS), {"a", "b"}).nodes["menu"]
    assert isinstance(node, Kb) and node.top == ("a", "b") and node.threshold == DEFAULT_THRESHOLD
    assert (node.prompt, node.ticket, node.timeout_ms, node.retries) == ("kb_ask", True, 8000, 1)


@pytest.mark.parametrize("change, line, reason", [
    ("top: [a, b]", 9, "`top` must list 1 to 9 knowledge-base entry ids (keys 1..9)"),
    ("top: [a, zz]", 9, "`top` names entry 'zz', which the knowledge base does not have"),
    ("top: [a, a]", 9, "`top` names entry 'a' twice"),
    ("top: [a, b]\n    threshold: 1.5", 10, "`threshold` 1.5 must be a score in (0, 1]"),
    ("top: [a, b]\n    threshold: yes", 10, "`threshold` True must be a score in (0, 1]"),
    ("top: [a, b]\n    retries: 7", 10, "`retries` 7 is out of range 0..3"),
    ("top: [a, b]\n    prompt: nosuch", 10, "prompt 'nosuch' is not in the prompt catalogue"),
])
def test_kb_node_problems_name_file_line_node_and_reason(tmp_path: Path, change: str, line: int, reason: str
                                                         ) -> None:
    body = KB.replace("top: [a, b]", change)
    if line == 9 and "must list" in reason:
        body = KB.replace("top: [a, b]", "top: [a, b, c, a1, a2, a3, a4, a5, a6, a7]")
    assert kb_problems(write(tmp_path, body)) == [f"{tmp_path / 'f.yaml'}:{line}: node 'menu': {reason}"]


def test_kb_node_needs_its_prompts_and_a_person_not_a_hang_up(tmp_path: Path) -> None:
    path = write(tmp_path, KB)
    assert problems(path)[0] == (f"{path}:7: node 'menu': prompt 'kb_ask' (said by kb nodes) is not in the prompt "
                                 "catalogue")
    path = write(tmp_path, KB.replace("agent: person", "agent: bye"))
    assert kb_problems(path) == [f"{path}:7: node 'menu': `agent` leads to hang-up 'bye'; a caller the knowledge "
                                 "base cannot help needs a person"]
