"""The sandbox's modules import each other without a cycle (imports under TYPE_CHECKING and
inside functions count too): each can be read, and imported, on its own."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"


def sandbox_imports(path: Path) -> set[str]:
    """The sandbox modules one file imports, by module name (`sandbox.x`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sandbox."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "sandbox":
                found.update(f"sandbox.{a.name}" for a in node.names)
            elif node.module.startswith("sandbox."):
                found.add(node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {f"sandbox.{p.stem}": p for p in SANDBOX.glob("*.py") if p.stem != "__init__"}
    return {name: sandbox_imports(path) & modules.keys() for name, path in modules.items()}


def test_the_sandbox_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert len(graph) > 10
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")
    assert order.index("sandbox.stack_model") < order.index("sandbox.intrinsics")
    assert order.index("sandbox.intrinsics") < order.index("sandbox.template")


def test_the_stack_model_imports_no_other_sandbox_module():
    assert import_graph()["sandbox.stack_model"] == set()


def test_the_cycle_check_would_see_a_cycle():
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())
