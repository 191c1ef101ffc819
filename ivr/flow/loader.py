"""Load a flow file into the typed model and check it: every problem names file, line, node and reason.

``check_flow`` returns every problem it finds (``ivr flows check`` prints them all); ``load_flow`` raises
`FlowError` on the first. Messages look like ``flows/x.yaml:12: node 'menu': leads to unknown node 'nope'``.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

import yaml

from asr.meaning import family_names
from ivr.errors import IvrError
from ivr.kb import DEFAULT_THRESHOLD
from ivr.flow.model import (
    KB_PROMPTS, NODE_KINDS, TERMINAL_KINDS, Answer, Branch, BusinessHours, Case, Collect, Confirm, Flow,
    Goto, Hangup, Kb, Lookup, Menu, Node, Option, Queue, Record, Say, Set, Transfer,
)

__all__ = ["FlowError", "Problem", "check_flow", "load_flow", "parse_condition", "BUILTIN_VARIABLES"]

DTMF_KEYS = set("0123456789*#ABCD")
TIMEOUT_RANGE_MS = (1_000, 60_000)
RECORD_RANGE_MS = (5_000, 600_000)
BUILTIN_VARIABLES = ("elderly", "business_hours", "registered_elderly", "urgent")
_CONDITION = re.compile(r"^\s*(!?)\s*([A-Za-z_]\w*)\s*(?:(==|!=)\s*(\S+))?\s*$")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    node: str  # "" for the flow as a whole
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}: "
        return where + (f"node {self.node!r}: {self.reason}" if self.node else self.reason)


class FlowError(IvrError, ValueError):
    """A flow file that cannot run; the message is the first problem, `problems` has them all."""

    def __init__(self, problems: list[Problem] | str) -> None:
        self.problems = problems if isinstance(problems, list) else []
        message = problems if isinstance(problems, str) else str(problems[0])
        if isinstance(problems, list) and len(problems) > 1:
            more = len(problems) - 1
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message)


def parse_condition(text: str) -> tuple[bool, str, str | None, str | None]:
    """``"!elderly"`` -> (negated, name, op, value); raises ValueError for anything else."""
    m = _CONDITION.match(text)
    if not m or (m.group(1) and m.group(3)):
        raise ValueError(f"condition {text!r} is not `name`, `!name`, `name == value` or `name != value`")
    return bool(m.group(1)), m.group(2), m.group(3), m.group(4)


class _LineLoader(yaml.SafeLoader):
    """Keeps the line of every mapping under ``__line__`` and keys given twice under ``__dupes__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    seen: dict[Any, int] = {}
    dupes: list[tuple[str, int, int]] = []
    for k, _ in node.value:
        key = loader.construct_object(k)
        if key in seen:
            dupes.append((str(key), seen[key], k.start_mark.line + 1))
        else:
            seen[key] = k.start_mark.line + 1
    mapping = loader.construct_mapping(node, deep=True)
    for flag, word in ((True, "yes"), (False, "no")):  # YAML 1.1 reads the keys yes/no as booleans
        if flag in mapping and word not in mapping:
            mapping[word] = mapping.pop(flag)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__keylines__"] = {_key_name(k): v for k, v in seen.items()}
    if dupes:
        mapping["__dupes__"] = dupes
    return mapping


def _key_name(key: Any) -> str:
    return {True: "yes", False: "no"}.get(key, str(key)) if isinstance(key, bool) else str(key)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_META = {"__line__", "__keylines__", "__dupes__"}


def load_flow(path: str | Path, prompts: Container[str] | None = None,
              kb_entries: Container[str] | None = None) -> Flow:
    """Parse and check a flow; `prompts` (the catalogue's ids) enables the missing-prompt check, `kb_entries` (the
    knowledge base's entry ids) the check of the entries kb nodes offer by key."""
    flow, problems = check_flow(path, prompts, kb_entries)
    if problems or flow is None:
        raise FlowError(problems)
    return flow


def check_flow(path: str | Path, prompts: Container[str] | None = None,
               kb_entries: Container[str] | None = None) -> tuple[Flow | None, list[Problem]]:
    """The flow (None if it could not be built) and every problem found in it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(path, 0, "", "flow file not found")]
    except OSError as exc:
        return None, [Problem(path, 0, "", f"cannot read the flow file ({exc.strerror})")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Problem(path, line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8")]
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(path, mark.line + 1 if mark else 0, "", f"not valid YAML ({problem})")]
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), dict) or len(set(raw["nodes"]) - _META) == 0:
        return None, [Problem(path, 1, "", "a flow needs a `nodes` mapping with at least one node")]
    b = _Builder(path, prompts, kb_entries)
    raw_nodes = raw["nodes"]
    for nid, first, again in raw_nodes.get("__dupes__", []):
        b.problems.append(Problem(path, again, nid, f"defined twice (first at line {first})"))
    nodes: dict[str, Node] = {}
    for nid, spec in raw_nodes.items():
        if nid in _META:
            continue
        node = b.node(str(nid), spec, raw_nodes["__keylines__"].get(str(nid), 0))
        if node is not None:
            nodes[node.id] = node
    line = raw.get("__line__", 1)
    flow = Flow(
        name=str(raw.get("name", path.stem)),
        path=path,
        start=str(raw.get("start", "")),
        nodes=nodes,
        repeat_key=str(raw.get("repeat_key", "*")),
        agent_key=str(raw.get("agent_key", "0")),
        agent_node=str(raw.get("agent_node", "")),
        elderly_node=str(raw.get("elderly_node", "")),
        business_hours=b.hours(raw.get("business_hours"), line),
        prompts_used=tuple(sorted(b.prompts_used)),
        digest=hashlib.sha256(text.encode()).hexdigest(),
    )
    for attr in ("repeat_key", "agent_key"):
        key = getattr(flow, attr)
        if key and key not in DTMF_KEYS:
            b.problems.append(Problem(path, line, "", f"`{attr}` {key!r} is not one DTMF key"))
    _check_graph(flow, raw, set(map(str, raw_nodes)) - _META, b.problems, node_errors=bool(b.problems))
    return flow, sorted(b.problems, key=lambda p: (p.line, p.node, p.reason))


_FIELDS: dict[str, set[str]] = {
    "say": {"prompt", "next", "interruptible"},
    "menu": {"prompt", "options", "no_input_prompt", "no_match_prompt", "timeout_ms", "retries", "on_fail",
             "understand", "no_input_retries"},
    "collect": {"prompt", "var", "next", "min_digits", "max_digits", "terminator", "timeout_ms", "interdigit_ms",
                "readback_prompt", "confirm_prompt", "no_input_prompt", "no_match_prompt", "retries", "on_fail"},
    "confirm": {"prompt", "yes", "no", "no_input_prompt", "no_match_prompt", "timeout_ms", "retries", "on_fail"},
    "answer": {"prompt", "offer_prompt", "more", "agent", "done", "timeout_ms"},
    "lookup": {"var", "found", "not_found", "prompt"},
    "record": {"prompt", "next", "ticket", "max_ms", "end_silence_ms", "no_input_ms", "beep"},
    "transfer": {"target", "prompt", "priority", "on_fail"},
    "queue": {"group", "prompt", "priority", "on_fail"},
    "set": {"values", "next"},
    "branch": {"cases", "default"},
    "goto": {"next"},
    "hangup": {"prompt"},
    "kb": {"prompt", "top", "threshold", "agent", "done", "ticket", "timeout_ms", "retries"},
}
PRIORITIES = ("normal", "elderly", "urgent")


class _Invalid(Exception):
    """One node problem, already recorded; the node is skipped."""


class _Builder:
    def __init__(self, path: Path, prompts: Container[str] | None, kb_entries: Container[str] | None) -> None:
        self.path = path
        self.prompts = prompts
        self.kb_entries = kb_entries
        self.prompts_used: set[str] = set()
        self.problems: list[Problem] = []

    def fail(self, line: int, nid: str, reason: str) -> _Invalid:
        self.problems.append(Problem(self.path, line, nid, reason))
        return _Invalid()

    def hours(self, spec: Any, line: int) -> BusinessHours:
        if spec is None:
            return BusinessHours()
        try:
            days = tuple(int(d) for d in spec.get("days", range(1, 8)))
            opens, closes = (time.fromisoformat(str(spec.get(k, d))) for k, d in (("open", "08:00"),
                                                                                    ("close", "20:00")))
            if not all(1 <= d <= 7 for d in days) or opens >= closes:
                raise ValueError
        except (AttributeError, TypeError, ValueError):
            self.problems.append(Problem(self.path, line, "", "`business_hours` needs days 1..7 and open < close "
                                                              "as HH:MM"))
            return BusinessHours()
        return BusinessHours(days, opens, closes)

    def node(self, nid: str, spec: Any, line: int) -> Node | None:
        try:
            return self._node(nid, spec, line)
        except _Invalid:
            return None

    def _node(self, nid: str, spec: Any, line: int) -> Node:
        if not isinstance(spec, dict):
            raise self.fail(line, nid, "expected a mapping")
        line = line or spec.get("__line__", 0)  # the line of the node's id
        kind = spec.get("type")
        if kind not in NODE_KINDS:
            raise self.fail(line, nid, f"unknown type {kind!r}; use one of {', '.join(NODE_KINDS)}")
        extra = sorted(set(spec) - {"type", *_META, *_FIELDS[kind]})
        if extra:
            raise self.fail(line, nid, f"unknown field {extra[0]!r} for a {kind} node")
        for key, first, again in spec.get("__dupes__", []):
            raise self.fail(again, nid, f"field {key!r} is given twice (first at line {first})")
        g = _Getter(self, nid, line, spec)
        if kind == "say":
            return Say(nid, line, g.prompt("prompt"), g.text("next"), g.bool("interruptible", True))
        if kind == "menu":
            retries = g.num("retries", 2, (0, 5))
            return Menu(nid, line, g.prompt("prompt"), self.options(nid, line, spec.get("options")),
                        g.prompt("no_input_prompt", False), g.prompt("no_match_prompt", False),
                        g.ms("timeout_ms", 6000, TIMEOUT_RANGE_MS), retries, g.text("on_fail", ""),
                        g.family("understand"), g.num("no_input_retries", retries, (0, retries)))
        if kind == "collect":
            lo, hi = g.num("min_digits", 1, (1, 32)), g.num("max_digits", 20, (1, 32))
            if lo > hi:
                raise self.fail(line, nid, f"`min_digits` {lo} is more than `max_digits` {hi}")
            term = g.text("terminator", "#")
            if term not in ("#", "*"):
                raise self.fail(line, nid, f"`terminator` {term!r} must be '#' or '*'")
            return Collect(nid, line, g.prompt("prompt"), g.text("var"), g.text("next"), lo, hi, term,
                           g.ms("timeout_ms", 8000, TIMEOUT_RANGE_MS), g.ms("interdigit_ms", 4000, TIMEOUT_RANGE_MS),
                           g.prompt("readback_prompt", False), g.prompt("confirm_prompt", False),
                           g.prompt("no_input_prompt", False),
                           g.prompt("no_match_prompt", False), g.num("retries", 2, (0, 5)), g.text("on_fail", ""))
        if kind == "confirm":
            return Confirm(nid, line, g.prompt("prompt"), g.text("yes"), g.text("no"),
                           g.prompt("no_input_prompt", False), g.prompt("no_match_prompt", False),
                           g.ms("timeout_ms", 6000, TIMEOUT_RANGE_MS), g.num("retries", 2, (0, 5)),
                           g.text("on_fail", ""))
        if kind == "answer":
            return Answer(nid, line, g.prompt("prompt"), g.prompt("offer_prompt"), g.text("more"), g.text("agent"),
                          g.text("done"), g.ms("timeout_ms", 6000, TIMEOUT_RANGE_MS))
        if kind == "kb":
            return self.kb(nid, line, g)
        if kind == "lookup":
            return Lookup(nid, line, g.text("var"), g.text("found"), g.text("not_found"), g.prompt("prompt"))
        if kind == "record":
            return Record(nid, line, g.prompt("prompt"), g.text("next"), ticket_kind=g.text("ticket", "complaint"),
                          max_ms=g.ms("max_ms", 120_000, RECORD_RANGE_MS),
                          end_silence_ms=g.ms("end_silence_ms", 3_000, TIMEOUT_RANGE_MS),
                          no_input_ms=g.ms("no_input_ms", 8_000, TIMEOUT_RANGE_MS), beep=g.bool("beep", True))
        if kind in ("transfer", "queue"):
            cls = Queue if kind == "queue" else Transfer
            priority = g.text("priority", "normal")
            if priority not in PRIORITIES:
                raise self.fail(line, nid, f"`priority` {priority!r} is not one of {', '.join(PRIORITIES)}")
            return cls(nid, line, g.text("group" if kind == "queue" else "target"), g.prompt("prompt", False),
                       priority=priority, on_fail=g.text("on_fail", ""))
        if kind == "set":
            values = spec.get("values")
            if not isinstance(values, dict) or not set(values) - _META:
                raise self.fail(line, nid, "`values` must map variable names to values")
            pairs = tuple((str(k), v if isinstance(v, bool) else str(v)) for k, v in values.items() if k not in _META)
            return Set(nid, line, pairs, g.text("next"))
        if kind == "branch":
            return Branch(nid, line, self.cases(nid, line, spec.get("cases")), g.text("default"))
        if kind == "goto":
            return Goto(nid, line, g.text("next"))
        return Hangup(nid, line, g.prompt("prompt", False))

    def kb(self, nid: str, line: int, g: _Getter) -> Kb:
        top = g.spec.get("top")
        if not isinstance(top, list) or not 1 <= len(top) <= 9 or not all(isinstance(t, str) and t for t in top):
            raise self.fail(g.line_of("top"), nid, "`top` must list 1 to 9 knowledge-base entry ids (keys 1..9)")
        for i, entry in enumerate(top):
            if entry in top[:i]:
                raise self.fail(g.line_of("top"), nid, f"`top` names entry {entry!r} twice")
            if self.kb_entries is not None and entry not in self.kb_entries:
                raise self.fail(g.line_of("top"), nid, f"`top` names entry {entry!r}, which the knowledge base "
                                                       "does not have")
        threshold = g.spec.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise self.fail(g.line_of("threshold"), nid, f"`threshold` {threshold!r} must be a score in (0, 1]")
        for pid in KB_PROMPTS:
            if self.prompts is not None and pid not in self.prompts:
                raise self.fail(line, nid, f"prompt {pid!r} (said by kb nodes) is not in the prompt catalogue")
            self.prompts_used.add(pid)
        return Kb(nid, line, g.text("agent"), g.text("done"), tuple(top), float(threshold),
                  g.prompt("prompt", False) or "kb_ask", g.bool("ticket", True),
                  g.ms("timeout_ms", 8000, TIMEOUT_RANGE_MS), g.num("retries", 1, (0, 3)))

    def cases(self, nid: str, line: int, raw: Any) -> tuple[Case, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(line, nid, "`cases` must be a list of {when: condition, next: node}")
        cases = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("when"), str) or not isinstance(
                    item.get("next"), str):
                raise self.fail(line, nid, "`cases` must be a list of {when: condition, next: node}")
            try:
                parse_condition(item["when"])
            except ValueError as exc:
                raise self.fail(item.get("__line__", line), nid, str(exc)) from None
            cases.append(Case(item["when"], item["next"]))
        return tuple(cases)

    def options(self, nid: str, line: int, raw: Any) -> tuple[Option, ...]:
        if not isinstance(raw, dict) or not set(raw) - _META:
            raise self.fail(line, nid, "a menu needs `options`, a mapping of choice name -> key/say/next")
        options: list[Option] = []
        keys: dict[str, str] = {}
        for name, first, again in raw.get("__dupes__", []):
            raise self.fail(again, nid, f"option {name!r} is given twice (first at line {first})")
        for name, spec in raw.items():
            if name in _META:
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
            phrases = [phrases] if isinstance(phrases, str) else phrases
            if not key and not phrases:
                raise self.fail(oline, nid, f"option {name!r} has neither a key nor phrases to say")
            if not isinstance(spec.get("next"), str):
                raise self.fail(oline, nid, f"option {name!r} needs `next`")
            flags = spec.get("set", [])
            options.append(Option(str(name), key, tuple(map(str, phrases)), spec["next"],
                                  tuple([flags] if isinstance(flags, str) else flags), oline))
        return tuple(options)


class _Getter:
    def __init__(self, b: _Builder, nid: str, line: int, spec: dict[str, Any]) -> None:
        self.b, self.nid, self.line, self.spec = b, nid, line, spec

    def line_of(self, name: str) -> int:
        return self.spec.get("__keylines__", {}).get(name, self.line)

    def text(self, name: str, default: str | None = None) -> str:
        value = self.spec.get(name, default)
        if not isinstance(value, str) or (default is None and not value):
            raise self.b.fail(self.line_of(name), self.nid, f"`{name}` must be a non-empty string")
        return value

    def prompt(self, name: str, required: bool = True) -> str:
        if self.spec.get(name) is None and not required:
            return None  # type: ignore[return-value]
        pid = self.text(name)
        if self.b.prompts is not None and pid not in self.b.prompts:
            raise self.b.fail(self.line_of(name), self.nid, f"prompt {pid!r} is not in the prompt catalogue")
        self.b.prompts_used.add(pid)
        return pid

    def family(self, name: str) -> str:
        """An intent family of asr.meaning's phrasings ("" when not given)."""
        value = self.text(name, "")
        known = family_names()
        if value and value not in known:
            raise self.b.fail(self.line_of(name), self.nid,
                              f"`{name}` {value!r} is not an intent family; known: {', '.join(known)}")
        return value

    def num(self, name: str, default: int, bounds: tuple[int, int], unit: str = "") -> int:
        value = self.spec.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.b.fail(self.line_of(name), self.nid, f"`{name}` must be an integer")
        if not bounds[0] <= value <= bounds[1]:
            raise self.b.fail(self.line_of(name), self.nid,
                              f"`{name}` {value}{unit} is out of range {bounds[0]}..{bounds[1]}{unit}")
        return value

    def ms(self, name: str, default: int, bounds: tuple[int, int]) -> int:
        return self.num(name, default, bounds, " ms")

    def bool(self, name: str, default: bool) -> bool:
        value = self.spec.get(name, default)
        if not isinstance(value, bool):
            raise self.b.fail(self.line_of(name), self.nid, f"`{name}` must be true or false")
        return value


def _check_graph(flow: Flow, raw: dict[str, Any], ids: set[str], problems: list[Problem], node_errors: bool) -> None:
    path, nodes = flow.path, flow.nodes
    line = raw.get("__keylines__", {}).get
    if not flow.start:
        problems.append(Problem(path, 1, "", "the flow needs `start`"))
        return
    for attr in ("start", "agent_node", "elderly_node"):
        target = getattr(flow, attr)
        if target and target not in ids:
            problems.append(Problem(path, line(attr, 1), "", f"`{attr}` names unknown node {target!r}"))
    set_vars = set(BUILTIN_VARIABLES)
    for node in nodes.values():
        if isinstance(node, Set):
            set_vars.update(k for k, _ in node.values)
        elif isinstance(node, (Collect, Lookup)):
            set_vars.add(node.var)
        elif isinstance(node, Menu):
            set_vars.update(f for o in node.options for f in o.set_flags)
    for node in nodes.values():
        for target in node.targets():
            if target not in ids:
                problems.append(Problem(path, node.line, node.id, f"leads to unknown node {target!r}"))
        if isinstance(node, Kb) and isinstance(nodes.get(node.agent), Hangup):
            problems.append(Problem(path, node.line, node.id, f"`agent` leads to hang-up {node.agent!r}; a caller "
                                                              "the knowledge base cannot help needs a person"))
        if isinstance(node, (Menu, Collect, Confirm)):
            if not node.on_fail and not flow.agent_node:
                problems.append(Problem(path, node.line, node.id, "needs `on_fail` (or the flow an `agent_node`) "
                                                                  "so repeated no-input never ends the call"))
            fail_to = nodes.get(node.on_fail or flow.agent_node)
            if isinstance(fail_to, Hangup):
                problems.append(Problem(path, node.line, node.id, f"`on_fail` leads to hang-up {fail_to.id!r}; "
                                                                  "send the caller to a person or the elderly path"))
        if isinstance(node, Menu):
            for o in node.options:
                if o.key and o.key == flow.repeat_key:
                    problems.append(Problem(path, o.line, node.id,
                                            f"option {o.name!r} uses key {o.key!r}, the flow's repeat key"))
        if isinstance(node, Branch):
            for case in node.cases:
                name = parse_condition(case.when)[1]
                if name not in set_vars:
                    problems.append(Problem(path, node.line, node.id, f"variable {name!r} is never set"))
    if node_errors or any(p.reason.startswith(("leads to unknown", "`")) for p in problems):
        return  # reachability needs every node built and every target known
    roots = [flow.start] + [n for n in (flow.agent_node, flow.elderly_node) if n]
    seen = _reach(nodes, roots)
    for node in sorted(nodes.values(), key=lambda n: n.line):
        if node.id not in seen:
            problems.append(Problem(path, node.line, node.id, f"unreachable from {flow.start!r}"))
    # dead ends: nodes from which no transfer or hang-up can be reached (a loop with no way out)
    ending = {n.id for n in nodes.values() if isinstance(n, TERMINAL_KINDS)}
    for node in nodes.values():
        # a menu's global keys reach the agent node too
        extra = [flow.agent_node] if isinstance(node, (Menu, Collect, Confirm)) and flow.agent_node else []
        if not (_reach(nodes, node.targets() + extra) | {node.id}) & ending:
            problems.append(Problem(path, node.line, node.id,
                                    "dead end: no path from here reaches a person or the end of the call"))


def _reach(nodes: dict[str, Node], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        nid = todo.pop()
        if nid not in seen and nid in nodes:
            seen.add(nid)
            todo += nodes[nid].targets()
    return seen
