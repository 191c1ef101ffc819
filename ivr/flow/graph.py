"""Draw a flow as Mermaid or Graphviz dot: people would rather look at a menu than read it."""
from __future__ import annotations

import re

from ivr.flow.model import (
    Answer, Branch, Collect, Confirm, Flow, Hangup, Kb, Lookup, Menu, Node, Queue, Record, Say, Set, Transfer,
)

__all__ = ["edges", "to_mermaid", "to_dot", "FORMATS"]

FORMATS = ("mermaid", "dot")


def edges(flow: Flow) -> list[tuple[str, str, str]]:
    """(from, to, label) for every transition, global keys included."""
    out: list[tuple[str, str, str]] = []
    for node in flow.nodes.values():
        if isinstance(node, Menu):
            out += [(node.id, o.next, o.key or "/".join(o.phrases[:1])) for o in node.options]
        elif isinstance(node, Collect):
            out.append((node.id, node.next, "digits"))
        elif isinstance(node, Confirm):
            out += [(node.id, node.yes, "yes 1"), (node.id, node.no, "no 2")]
        elif isinstance(node, Answer):
            out += [(node.id, node.more, "more 1"), (node.id, node.done, "done 2"), (node.id, node.agent, "person")]
        elif isinstance(node, Kb):
            out += [(node.id, node.done, "answered"), (node.id, node.agent, "person")]
        elif isinstance(node, Lookup):
            out += [(node.id, node.found, "found"), (node.id, node.not_found, "not found")]
        elif isinstance(node, Branch):
            out += [(node.id, c.next, c.when) for c in node.cases] + [(node.id, node.default, "else")]
        else:
            out += [(node.id, t, "") for t in node.targets()]
        fail = getattr(node, "on_fail", "")
        if fail and not isinstance(node, Transfer):
            out.append((node.id, fail, "fail"))
        elif fail:
            out.append((node.id, fail, "transfer failed"))
    return out


def _label(node: Node) -> str:
    kind = type(node).__name__.lower()
    extra = ""
    if isinstance(node, Transfer):
        extra = f" {node.target} ({node.priority})"
    elif isinstance(node, (Collect, Lookup)):
        extra = f" {node.var}"
    elif isinstance(node, Set):
        extra = " " + ", ".join(f"{k}={v}" for k, v in node.values)
    return f"{node.id}\\n{kind}{extra}"


def _mid(nid: str) -> str:
    return re.sub(r"\W", "_", nid)


def to_mermaid(flow: Flow) -> str:
    lines = ["flowchart TD"]
    for node in flow.nodes.values():
        label = _label(node).replace("\\n", "<br/>").replace('"', "'")
        if isinstance(node, (Menu, Confirm, Branch, Lookup)):
            lines.append(f'  {_mid(node.id)}{{"{label}"}}')
        elif isinstance(node, (Transfer, Hangup)):
            lines.append(f'  {_mid(node.id)}(["{label}"])')
        elif isinstance(node, (Record, Say, Answer, Kb)):
            lines.append(f'  {_mid(node.id)}["{label}"]')
        else:
            lines.append(f'  {_mid(node.id)}("{label}")')
    for a, b, label in edges(flow):
        text = label.replace('"', "'").replace("|", "/")
        lines.append(f"  {_mid(a)} -->|\"{text}\"| {_mid(b)}" if text else f"  {_mid(a)} --> {_mid(b)}")
    if flow.agent_node:
        lines.append(f'  global_keys(["{flow.agent_key}: person, {flow.repeat_key}: repeat"]) -.-> '
                     f"{_mid(flow.agent_node)}")
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    def q(s: str) -> str:
        return '"' + s.replace('"', '\\"') + '"'

    shapes = {Menu: "diamond", Confirm: "diamond", Branch: "diamond", Lookup: "diamond", Transfer: "doubleoctagon",
              Queue: "doubleoctagon", Hangup: "doublecircle", Record: "cylinder"}
    lines = [f"digraph {q(flow.name)} {{", "  rankdir=TB;", "  node [shape=box, fontname=\"Noto Sans CJK SC\"];",
             f"  {q(flow.start)} [style=bold];"]
    for node in flow.nodes.values():
        shape = shapes.get(type(node), "box")
        lines.append(f"  {q(node.id)} [label={q(_label(node))}, shape={shape}];")
    for a, b, label in edges(flow):
        lines.append(f"  {q(a)} -> {q(b)}" + (f" [label={q(label)}];" if label else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"
