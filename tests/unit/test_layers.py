"""lambda_src/chat's layers (docs/architecture.md): the adapters reach the rules only through
the ports, so a change to the rules' modules never touches DynamoDB or API Gateway code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHAT = Path(__file__).resolve().parents[2] / "lambda_src" / "chat"
ADAPTERS = (
    "store",
    "notifier",
    "fanout",
    "sharding",
    "aws_errors",
    "review_hook",
    "events_out",
)
RULES = {
    "chat.frames",
    "chat.errors",
    "chat.names",
    "chat.rooms",
    "chat.service",
    "chat.origins",
    "chat.review",
    "chat.events",
}


def chat_imports(module: str) -> set[str]:
    """The `chat.*` modules a module imports (`from chat import x` counts as chat.x)."""
    tree = ast.parse((CHAT / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("chat."))
        elif isinstance(node, ast.ImportFrom) and node.module == "chat":
            found.update(f"chat.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chat."):
            found.add(str(node.module))
    return found


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_imports_nothing_from_the_rules(adapter):
    assert chat_imports(adapter) & RULES == set()


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_rule_imports_no_adapter(rule):
    # The pure rules (chat.rooms among them) reach storage and API Gateway through the ports.
    module = rule.removeprefix("chat.")
    assert chat_imports(module) & {f"chat.{adapter}" for adapter in ADAPTERS} == set()


def test_the_ports_import_no_other_chat_module():
    assert chat_imports("ports") == set()


def test_the_rules_still_offer_the_store_errors_and_frame_the_ports_define():
    from chat import errors, frames, ports  # noqa: PLC0415

    assert errors.NameTakenError is ports.NameTakenError
    assert errors.NameOwnedError is ports.NameOwnedError
    assert errors.RoomFullError is ports.RoomFullError
    assert errors.ConcurrentUpdateError is ports.ConcurrentUpdateError
    assert frames.Frame is ports.Frame
    assert frames.encode is ports.encode


def test_the_import_check_sees_each_form_of_import():
    # The rules import the ports and each other in the three forms the check reads.
    assert "chat.ports" in chat_imports("frames")
    assert "chat.errors" in chat_imports("names")
    assert "chat.frames" in chat_imports("service")


def test_the_functions_module_docstrings_are_short_and_leave_explanations_to_docs():
    # names.py's docstring is the record of the name rules and stays whole.
    for path in [*sorted(CHAT.glob("*.py")), CHAT.parent / "handler.py"]:
        if path.name == "names.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert doc.count("\n") < 15, f"{path.name}: move the explanation to docs/"
