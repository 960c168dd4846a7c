"""lambda_src/ ships as-is: it may import only the standard library, the runtime's boto3 and
Powertools, which AWS's public layer provides (infra/powertools.py; the pin and the layer
version are checked in tests/infra/test_monitoring.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
RUNTIME_PROVIDED = {"boto3", "botocore"}
LAYER_PROVIDED = {"aws_lambda_powertools"}
OWN = {"chat", "handler"}


def imported_top_level_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_lambda_code_imports_only_stdlib_boto3_powertools_and_itself():
    sources = sorted(LAMBDA_SRC.rglob("*.py"))
    assert sources
    allowed = set(sys.stdlib_module_names) | RUNTIME_PROVIDED | LAYER_PROVIDED | OWN
    for source in sources:
        unexpected = imported_top_level_modules(source) - allowed
        assert not unexpected, f"{source.relative_to(LAMBDA_SRC)} imports {sorted(unexpected)}"


def test_lambda_code_has_no_vendored_packages():
    entries = {p.name for p in LAMBDA_SRC.iterdir() if not p.name.startswith((".", "__"))}
    assert entries == {"handler.py", "admin.py", "chat"}
