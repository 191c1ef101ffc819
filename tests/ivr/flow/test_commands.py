"""`ivr flows check`, `ivr flows graph` and `ivr flows evaluate` through the typer app."""
from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from ivr.commands import context
from ivr.commands.flows import app as flows_app

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> tuple[int, str]:
    root = typer.Typer()

    @root.callback()
    def _main() -> None:
        context.configure(None, {}, 0)

    root.add_typer(flows_app, name="flows")
    result = CliRunner().invoke(root, ["flows", *args], env={})
    return result.exit_code, result.output


def test_check_shipped_flows() -> None:
    code, out = run("check")
    assert code == 0, out
    assert f"{REPO / 'flows' / 'hotline.yaml'}: ok (" in out


def test_check_reports_every_problem_with_file_line_node(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("""\
start: m
agent_node: p
nodes:
  m:
    type: menu
    prompt: main_menu
    timeout_ms: 100
    options:
      a: {key: "1", next: p}
  p: {type: transfer, target: general, prompt: no_such_prompt}
  q: {type: goto, next: zz}
""")
    code, out = run("check", str(bad), str(REPO / "flows" / "hotline.yaml"))
    assert code == 1
    lines = out.splitlines()
    assert lines[:3] == [
        f"{bad}:7: node 'm': `timeout_ms` 100 ms is out of range 1000..60000 ms",
        f"{bad}:10: node 'p': prompt 'no_such_prompt' is not in the prompt catalogue",
        f"{bad}:11: node 'q': leads to unknown node 'zz'",
    ]
    assert len(lines) == 4 and lines[3].startswith(f"{REPO / 'flows' / 'hotline.yaml'}: ok (20 nodes, ")


def test_graph_mermaid_and_dot() -> None:
    code, out = run("graph", str(REPO / "flows" / "hotline.yaml"))
    assert code == 0 and out.startswith("flowchart TD\n")
    assert '  main_menu -->|"1"| complaint' in out and '  agent -->|"elderly"| elderly_agent' in out
    code, out = run("graph", str(REPO / "flows" / "hotline.yaml"), "--format", "dot")
    assert code == 0 and out.startswith('digraph "hotline" {')
    assert '  "progress_lookup" -> "progress_not_found" [label="not found"];' in out and out.endswith("}\n")


def test_graph_rejects_unknown_format_and_bad_flow(tmp_path: Path) -> None:
    code, out = run("graph", str(REPO / "flows" / "hotline.yaml"), "--format", "png")
    assert code == 2 and "ivr: --format 'png': use one of mermaid, dot" in out
    code, out = run("graph", str(tmp_path / "none.yaml"))
    assert code == 1 and f"ivr: {tmp_path / 'none.yaml'}:0: flow file not found" in out


def test_evaluate_prints_each_menus_accuracy_by_keywords_and_combined() -> None:
    """The shipped set: at least 150 phrasings per main and elderly menu (the consult menu became the knowledge
    base's question: `ivr kb evaluate`), and on both the keywords with meaning understand more callers than the
    keywords alone."""
    code, out = run("evaluate")
    assert code == 0, out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.endswith("%") and "_menu" in line}
    assert set(rows) == {"main_menu", "elderly_menu"}
    for menu, (_, family, n, keywords, combined) in rows.items():
        assert family == menu.removesuffix("_menu") and int(n) >= 150
        assert float(combined.rstrip("%")) > float(keywords.rstrip("%")) + 5, menu
    assert "  main_menu keywords: complaint->none x" in out and "  elderly_menu combined: " in out


def test_evaluate_names_the_line_of_a_bad_phrasing(tmp_path: Path) -> None:
    bad = tmp_path / "set.tsv"
    bad.write_text("menu\texpect\ttext\nmain_menu\tcomplaint\t我要投诉\nmain_menu\tweather\t今天下雨\n", encoding="utf-8")
    code, out = run("evaluate", str(REPO / "flows" / "hotline.yaml"), "--set", str(bad))
    assert code == 1 and out.strip().endswith(f"{bad}:3: menu main_menu has no choice 'weather'; it has agent, "
                                              "complaint, consult, elderly, louder, none, progress, repeat, slower, "
                                              "suggestion")
    bad.write_text("goodbye\tcomplaint\t我要投诉\n", encoding="utf-8")
    code, out = run("evaluate", str(REPO / "flows" / "hotline.yaml"), "--set", str(bad))
    assert code == 1 and out.strip().endswith(f"{bad}:1: 'goodbye' is not a menu of flow hotline")


def test_check_names_an_unknown_intent_family(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text("""\
start: m
nodes:
  m:
    type: menu
    prompt: main_menu
    understand: weather
    on_fail: p
    options:
      a: {key: "1", next: p}
  p: {type: transfer, target: general, prompt: transfer_agent}
""")
    code, out = run("check", str(flow))
    assert code == 1
    assert out.splitlines() == [f"{flow}:6: node 'm': `understand` 'weather' is not an intent family; known: main, "
                                "consult, elderly"]


def test_check_names_an_entry_the_knowledge_base_lacks(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text("""\
start: k
agent_node: p
nodes:
  k:
    type: kb
    top: [ss_card_lost, no_such_entry]
    agent: p
    done: p
  p: {type: transfer, target: general, prompt: transfer_agent}
""")
    code, out = run("check", str(flow))
    assert code == 1
    assert out.splitlines() == [f"{flow}:6: node 'k': `top` names entry 'no_such_entry', which the knowledge base "
                                "does not have"]
