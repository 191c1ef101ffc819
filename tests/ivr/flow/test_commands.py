"""`ivr flows check` and `ivr flows graph` through the typer app."""
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
    assert len(lines) == 4 and lines[3].startswith(f"{REPO / 'flows' / 'hotline.yaml'}: ok (24 nodes, ")


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
