"""Guard rails for the layering the README and shared/design.md promise, read from the source
with `ast` (nothing is imported): the pure core imports no adapter library and reads no wall
clock, and no two station modules import each other in a cycle.

design.md, "Layers": "Core is pure: codecs, validation, workflows and payload builders take
values and return values. No serial, bleak, paho or kivy imports there, no sleeping, no wall
clock (pass a clock in)."
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

STATION = Path(__file__).resolve().parents[1] / "station"

# The pure core: models and their rules, the workflows, the codecs and the payload builders.
CORE = (
    "station/models.py",
    "station/units.py",
    "station/validation.py",
    "station/guard.py",
    "station/capture.py",
    "station/rooming.py",
    "station/names.py",
    "station/rooming_base.py",
    "station/rooming_data.py",
    "station/rooming_readings.py",
    "station/rooming_record.py",
    "station/manual_entry.py",
    "station/vitals.py",
    "station/workflow.py",
    "station/checkin.py",
    "station/biomed.py",
    "station/submission.py",
    "station/audit.py",
    "station/lockout.py",
    "station/errors.py",
    "station/devices/codecs/**/*.py",
    "station/sync/payloads.py",
    "station/sync/fhir.py",
    "station/sync/contract.py",
    "station/sync/audit_chain.py",
    "station/gateway/hl7v2.py",
    "station/gateway/hl7v2_intake.py",
    "station/gateway/routing.py",
)
# Transport and UI libraries: each belongs to one adapter, never to the core.
ADAPTER_LIBRARIES = frozenset(
    {"serial", "bleak", "paho", "kivy", "subprocess", "dbus_fast", "socket", "sqlite3",
     "threading", "asyncio"}
)
# Calls that read the wall clock or sleep: the core takes a clock instead.
WALL_CLOCK = frozenset(
    {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
     ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("time", "sleep"),
     ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime")}
)


def core_files() -> list[Path]:
    root = STATION.parent
    files: set[Path] = set()
    for pattern in CORE:
        files.update(root.glob(pattern))
    return sorted(files)


def module_name(path: Path) -> str:
    parts = path.relative_to(STATION.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, *, top_level_only: bool) -> Iterator[tuple[str, int]]:
    """Every module an `import` names (resolved for relative imports), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else (
        module_name(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name, node.lineno
            for alias in node.names:  # `from station.x import y` may name a module y
                yield f"{name}.{alias.name}", node.lineno


def wall_clock_calls(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else (
                owner.attr if isinstance(owner, ast.Attribute) else "")
            if (owner_name, node.func.attr) in WALL_CLOCK:
                yield f"{owner_name}.{node.func.attr}()", node.lineno


def test_the_core_list_names_real_files() -> None:
    files = core_files()
    assert len(files) > 20
    assert all(f.is_file() for f in files)


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(STATION.parent)))
def test_core_module_imports_no_adapter_library(path: Path) -> None:
    found = [
        f"line {line}: {name}"
        for name, line in imported_modules(path, top_level_only=False)
        if name.split(".")[0] in ADAPTER_LIBRARIES
    ]
    assert found == []


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(STATION.parent)))
def test_core_module_reads_no_wall_clock_and_never_sleeps(path: Path) -> None:
    assert [f"line {line}: {call}" for call, line in wall_clock_calls(path)] == []


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in STATION.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _line in imported_modules(path, top_level_only=True):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (empty: none), by depth-first search."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle_among_station_modules() -> None:
    assert " -> ".join(find_cycle(import_graph())) == ""


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The rail itself can fail: a made-up graph with a cycle is reported as one.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
