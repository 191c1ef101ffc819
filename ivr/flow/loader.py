"""Load a flow file into the typed model, rejecting anything the runner could trip on.

Every error names the file, the line, the node and the reason: ``flows/x.yaml:12: node 'menu': ...``.
"""
from __future__ import annotations

from collections.abc import Container
from pathlib import Path
from typing import Any

import yaml

from ivr.flow.model import NODE_KINDS, Flow, Hangup, Menu, Node, Option, Record, Say, Transfer

__all__ = ["FlowError", "load_flow"]

DTMF_KEYS = set("0123456789*#ABCD")
TIMEOUT_RANGE_MS = (1_000, 60_000)
RECORD_RANGE_MS = (5_000, 600_000)


class FlowError(ValueError):
    """A flow file that cannot run; the message is ``file:line: node 'id': reason``."""


class _LineLoader(yaml.SafeLoader):
    """Keeps the line of every mapping under the key ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate key {sorted(map(str, dupes))[0]!r}", node.start_mark
        )
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_flow(path: str | Path, prompts: Container[str] | None = None) -> Flow:
    """Parse and validate a flow; `prompts` (the catalogue's ids) enables the missing-prompt check."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except FileNotFoundError:
        raise FlowError(f"{path}: flow file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FlowError(f"{path}{line}: not valid YAML ({problem})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), dict) or not raw["nodes"]:
        raise FlowError(f"{path}: a flow needs a `nodes` mapping with at least one node")
    b = _Builder(path, prompts)
    nodes = {str(nid): b.node(str(nid), spec) for nid, spec in raw["nodes"].items() if nid != "__line__"}
    flow = Flow(
        name=str(raw.get("name", path.stem)),
        path=path,
        start=str(raw.get("start", "")),
        nodes=nodes,
        repeat_key=str(raw.get("repeat_key", "*")),
        agent_key=str(raw.get("agent_key", "0")),
        agent_node=str(raw.get("agent_node", "")),
        elderly_node=str(raw.get("elderly_node", "")),
        prompts_used=tuple(sorted(b.prompts_used)),
    )
    _check_graph(flow, raw)
    return flow


class _Builder:
    def __init__(self, path: Path, prompts: Container[str] | None) -> None:
        self.path = path
        self.prompts = prompts
        self.prompts_used: set[str] = set()

    def fail(self, line: int, nid: str, reason: str) -> FlowError:
        return FlowError(f"{self.path}:{line}: node {nid!r}: {reason}")

    def node(self, nid: str, spec: Any) -> Node:
        if not isinstance(spec, dict):
            raise FlowError(f"{self.path}: node {nid!r}: expected a mapping")
        line = spec.get("__line__", 0)
        kind = spec.get("type")
        if kind not in NODE_KINDS:
            raise self.fail(line, nid, f"unknown type {kind!r}; use one of {', '.join(NODE_KINDS)}")
        known = {"type", "__line__", *_FIELDS[kind]}
        extra = sorted(set(spec) - known)
        if extra:
            raise self.fail(line, nid, f"unknown field {extra[0]!r} for a {kind} node")
        get = _Getter(self, nid, line, spec)
        if kind == "say":
            return Say(nid, line, get.prompt("prompt"), get.str("next"), get.bool("interruptible", True))
        if kind == "menu":
            return Menu(
                nid, line, get.prompt("prompt"), self.options(nid, line, spec.get("options")),
                no_input_prompt=get.prompt("no_input_prompt", required=False),
                no_match_prompt=get.prompt("no_match_prompt", required=False),
                timeout_ms=get.ms("timeout_ms", 6000, TIMEOUT_RANGE_MS),
                retries=get.int("retries", 2, (0, 5)),
                on_fail=get.str("on_fail", ""),
            )
        if kind == "record":
            return Record(
                nid, line, get.prompt("prompt"), get.str("next"),
                ticket_kind=get.str("ticket", "complaint"),
                max_ms=get.ms("max_ms", 120_000, RECORD_RANGE_MS),
                end_silence_ms=get.ms("end_silence_ms", 3_000, TIMEOUT_RANGE_MS),
                no_input_ms=get.ms("no_input_ms", 8_000, TIMEOUT_RANGE_MS),
                beep=get.bool("beep", True),
            )
        if kind == "transfer":
            return Transfer(
                nid, line, get.str("target"), get.prompt("prompt", required=False),
                priority=get.str("priority", "normal"), on_fail=get.str("on_fail", ""),
            )
        return Hangup(nid, line, get.prompt("prompt", required=False))

    def options(self, nid: str, line: int, raw: Any) -> tuple[Option, ...]:
        if not isinstance(raw, dict) or len(raw) <= 1:
            raise self.fail(line, nid, "a menu needs `options`, a mapping of choice name -> key/say/next")
        options: list[Option] = []
        keys: dict[str, str] = {}
        for name, spec in raw.items():
            if name == "__line__":
                continue
            if not isinstance(spec, dict):
                raise self.fail(line, nid, f"option {name!r}: expected a mapping with key/say/next")
            oline = spec.get("__line__", line)
            key = str(spec.get("key", ""))
            if key and (len(key) != 1 or key not in DTMF_KEYS):
                raise self.fail(oline, nid, f"option {name!r}: key {key!r} is not one DTMF key")
            if key in keys:
                raise self.fail(oline, nid, f"options {keys[key]!r} and {name!r} both use key {key!r}")
            if key:
                keys[key] = str(name)
            phrases = spec.get("say", [])
            if isinstance(phrases, str):
                phrases = [phrases]
            if not key and not phrases:
                raise self.fail(oline, nid, f"option {name!r} has neither a key nor phrases to say")
            if not isinstance(spec.get("next"), str):
                raise self.fail(oline, nid, f"option {name!r} needs `next`")
            flags = spec.get("set", [])
            options.append(Option(str(name), key, tuple(map(str, phrases)), spec["next"],
                                  tuple([flags] if isinstance(flags, str) else flags)))
        return tuple(options)


_FIELDS = {
    "say": {"prompt", "next", "interruptible"},
    "menu": {"prompt", "options", "no_input_prompt", "no_match_prompt", "timeout_ms", "retries", "on_fail"},
    "record": {"prompt", "next", "ticket", "max_ms", "end_silence_ms", "no_input_ms", "beep"},
    "transfer": {"target", "prompt", "priority", "on_fail"},
    "hangup": {"prompt"},
}


class _Getter:
    def __init__(self, b: _Builder, nid: str, line: int, spec: dict[str, Any]) -> None:
        self.b, self.nid, self.line, self.spec = b, nid, line, spec

    def str(self, name: str, default: str | None = None) -> str:
        value = self.spec.get(name, default)
        if not isinstance(value, str) or (default is None and not value):
            raise self.b.fail(self.line, self.nid, f"`{name}` must be a non-empty string")
        return value

    def prompt(self, name: str, required: bool = True) -> str:
        value = self.spec.get(name)
        if value is None and not required:
            return None  # type: ignore[return-value]
        pid = self.str(name)
        if self.b.prompts is not None and pid not in self.b.prompts:
            raise self.b.fail(self.line, self.nid, f"prompt {pid!r} is not in the prompt catalogue")
        self.b.prompts_used.add(pid)
        return pid

    def int(self, name: str, default: int, bounds: tuple[int, int]) -> int:
        value = self.spec.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.b.fail(self.line, self.nid, f"`{name}` must be an integer")
        if not bounds[0] <= value <= bounds[1]:
            raise self.b.fail(self.line, self.nid, f"`{name}` {value} is out of range {bounds[0]}..{bounds[1]}")
        return value

    def ms(self, name: str, default: int, bounds: tuple[int, int]) -> int:
        value = self.int(name, default, (-(2**31), 2**31))
        if not bounds[0] <= value <= bounds[1]:
            raise self.b.fail(self.line, self.nid, f"`{name}` {value} ms is out of range {bounds[0]}..{bounds[1]} ms")
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self.spec.get(name, default)
        if not isinstance(value, bool):
            raise self.b.fail(self.line, self.nid, f"`{name}` must be true or false")
        return value


def _check_graph(flow: Flow, raw: dict[str, Any]) -> None:
    path, nodes = flow.path, flow.nodes
    line = raw.get("__line__", 1)
    for attr in ("start", "agent_node", "elderly_node"):
        target = getattr(flow, attr)
        if attr == "start" and not target:
            raise FlowError(f"{path}:{line}: the flow needs `start`")
        if target and target not in nodes:
            raise FlowError(f"{path}:{line}: `{attr}` names unknown node {target!r}")
    for node in nodes.values():
        for target in node.targets():
            if target not in nodes:
                raise FlowError(f"{path}:{node.line}: node {node.id!r}: leads to unknown node {target!r}")
        if isinstance(node, Menu) and not node.on_fail and not flow.agent_node:
            raise FlowError(
                f"{path}:{node.line}: node {node.id!r}: a menu needs `on_fail` (or the flow an `agent_node`) "
                "so repeated no-input never ends the call"
            )
    seen: set[str] = set()
    todo = [flow.start] + [n for n in (flow.agent_node, flow.elderly_node) if n]
    while todo:
        nid = todo.pop()
        if nid not in seen:
            seen.add(nid)
            todo += nodes[nid].targets()
    for node in sorted(nodes.values(), key=lambda n: n.line):
        if node.id not in seen:
            raise FlowError(f"{path}:{node.line}: node {node.id!r}: unreachable from {flow.start!r}")
