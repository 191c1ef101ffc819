"""The map in docs/architecture.md is the code's: every import of `asr/`, `prompts/` and `ivr/` (at module level or
inside a function) points down the table of packages, the table allows nothing no import uses, and nothing imports in
a circle, neither between packages nor between files."""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("asr", "prompts", "ivr")
MAP = REPO / "docs" / "architecture.md"
TABLE_HEADING = "## Packages and what each may import"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. ivr.flow.runner
    target: str  # the imported module (a package's __init__ counts as the package), e.g. ivr.media.callio
    where: str  # file:line

    @property
    def units(self) -> tuple[str, str]:
        return unit(self.source), unit(self.target)


def module_files() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def unit(module: str) -> str:
    """What a module belongs to in the table: `asr`, `prompts`, `ivr` itself, or `ivr.<package or module>`."""
    parts = module.split(".")
    return parts[0] if parts[0] != "ivr" or len(parts) == 1 else f"ivr.{parts[1]}"


def imports(files: dict[str, Path]) -> Iterator[Import]:
    """Every import of a first-party module, wherever it is in the file, resolved to the module it loads."""
    for source, path in files.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ROOTS:
                        yield Import(source, alias.name, where)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                if module.split(".")[0] not in ROOTS:
                    continue
                for alias in node.names:  # `from pkg import submodule` loads the submodule
                    target = f"{module}.{alias.name}"
                    yield Import(source, target if target in files else module, where)


def table() -> dict[str, set[str]]:
    """The table of docs/architecture.md: unit -> the units it may import."""
    text = MAP.read_text(encoding="utf-8")
    assert TABLE_HEADING in text, f"{MAP}: no section {TABLE_HEADING!r}"
    rows: dict[str, set[str]] = {}
    for line in text.split(TABLE_HEADING, 1)[1].splitlines():
        if line.startswith("## "):
            break
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"{MAP}: a row needs three cells (unit, what it holds, may import): {line}"
        name = cells[0].strip("`")
        assert name not in rows, f"{MAP}: {name} has two rows"
        rows[name] = set(re.findall(r"`([^`]+)`", cells[2]))
    return rows


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


FILES = module_files()
IMPORTS = list(imports(FILES))
TABLE = table()


def test_every_package_has_a_row_and_every_row_a_package() -> None:
    units = {unit(m) for m in FILES}
    assert sorted(units - TABLE.keys()) == [], "packages missing from the table in docs/architecture.md"
    assert sorted(TABLE.keys() - units) == [], "rows of docs/architecture.md naming no package"


def test_every_import_points_down_the_table() -> None:
    broken = [f"{i.where}: {i.source} imports {i.target}, but {i.units[0]} may not import {i.units[1]}"
              for i in IMPORTS if i.units[0] != i.units[1] and i.units[1] not in TABLE.get(i.units[0], set())]
    assert broken == []


def test_the_table_allows_only_what_the_code_imports() -> None:
    used: dict[str, set[str]] = defaultdict(set)
    for i in IMPORTS:
        if i.units[0] != i.units[1]:
            used[i.units[0]].add(i.units[1])
    unused = [f"{u} may import {sorted(allowed - used[u])} but does not" for u, allowed in TABLE.items()
              if allowed - used[u]]
    assert unused == []


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for i in IMPORTS:
        if i.units[0] != i.units[1]:
            graph[i.units[0]].add(i.units[1])
    assert cycles(graph) == []


def test_no_cycle_between_files() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for i in IMPORTS:
        if i.source != i.target:
            graph[i.source].add(i.target)
    assert cycles(graph) == []


def test_the_walk_sees_every_kind_of_import() -> None:
    """The walk finds imports inside functions and relative ones, and resolves `from pkg import module`."""
    seen = {(i.source, i.target) for i in IMPORTS}
    assert ("ivr.console.app", "ivr.console.agents_api") in seen  # from ivr.console import agents_api
    assert ("ivr.flow.runner", "ivr.call") in seen
    assert any(i.source == "asr.download" and i.target == "asr.model_files" for i in IMPORTS)  # from .model_files
    assert any(i.source == "ivr.triage.autofill" and i.target == "asr.textclass" for i in IMPORTS)  # nested
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
