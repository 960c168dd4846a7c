"""`make run` installs only what running needs; `make test` adds the rest; neither fights.

Two levels of Python install, each with its marker in .venv/: requirements-run.txt (the CDK
app, the functions' packages, the sandbox) behind `.venv/.run-installed`, and
requirements-dev.txt (which includes it) behind `.venv/.installed`. The Makefile tests run
`make -n` (print, do not run) in a copy of the files the install rules read, with the
markers set up as each order of `make run` and `make test` leaves them.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]

# What `make run` runs (and `make synth` and `make conformance`, which need no more): the CDK
# app, the sandbox, the functions it runs (and the authorizer, with sign-in on), and the
# conformance client.
RUN_CODE = ("app.py", "infra", "sandbox", "lambda_src", "authorizer_src", "tools")
# Where the project's own top-level modules live (the functions' code is on their path).
LOCAL_ROOTS = (ROOT, ROOT / "lambda_src", ROOT / "authorizer_src")
# The test, lint and bench tools: requirements-dev.txt's, and none of them `make run`'s.
DEV_ONLY = ("pytest", "playwright", "hypothesis", "mypy", "ruff", "matplotlib", "cfn-lint")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> list[Requirement]:
    """The requirements of a pip requirements file, following `-r` includes."""
    found = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += requirements(path.parent / line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def installed_closure(roots: list[Requirement]) -> set[str]:
    """The distributions pip installs for `roots`: them and their dependencies, with extras."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonical(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            wanted = not req.marker or any(
                req.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            )
            if wanted:
                todo.append((canonical(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def imported_modules(*paths: Path) -> set[str]:
    """Top-level names every `import` in the files under `paths` names, lazy ones included."""
    found = set()
    for path in paths:
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found


def is_local(module: str) -> bool:
    return any(
        (root / module).is_dir() or (root / f"{module}.py").is_file() for root in LOCAL_ROOTS
    )


def third_party(modules: set[str]) -> set[str]:
    return {
        m
        for m in modules
        if m not in sys.stdlib_module_names and m != "__future__" and not is_local(m)
    }


def test_every_package_the_app_the_sandbox_and_the_functions_import_is_in_the_run_requirements():
    modules = third_party(imported_modules(*(ROOT / p for p in RUN_CODE)))
    assert {"aws_cdk", "aiohttp", "moto", "boto3", "jwt"} <= modules  # the scan sees imports
    run = installed_closure(requirements(ROOT / "requirements-run.txt"))
    owners = metadata.packages_distributions()
    missing = {
        module: owners.get(module, ["<not installed>"])
        for module in sorted(modules)
        if not {canonical(d) for d in owners.get(module, [])} & run
    }
    assert not missing, f"imported by `make run`'s code, not in requirements-run.txt: {missing}"


def test_the_run_requirements_leave_out_the_test_lint_and_bench_tools():
    run = installed_closure(requirements(ROOT / "requirements-run.txt"))
    dev = installed_closure(requirements(ROOT / "requirements-dev.txt"))
    assert run < dev
    assert not run & set(DEV_ONLY), run & set(DEV_ONLY)
    assert set(DEV_ONLY) <= dev
    # moto's server extra pulls every service's dependencies; the sandbox needs none of them.
    assert not run & {"docker", "cfn-lint", "graphql-core", "openapi-spec-validator"}


def test_every_pin_is_written_once_across_the_requirements_files_make_installs():
    names = [canonical(r.name) for r in requirements(ROOT / "requirements-dev.txt")]
    # moto: requirements-dev.txt adds the extras at requirements-run.txt's version.
    twice = {n for n in names if names.count(n) > 1} - {"moto"}
    assert not twice, twice
    pins = {
        str(r.specifier) for r in requirements(ROOT / "requirements-dev.txt") if r.name == "moto"
    }
    assert len(pins) == 1, pins


# The Makefile's install rules, in a scratch copy: `make -n` prints the recipes it would run.
INSTALL_INPUTS = (
    "Makefile",
    "requirements.txt",
    "requirements-run.txt",
    "requirements-dev.txt",
    "package.json",
    "package-lock.json",
)
RUN_INSTALL = "-r requirements-run.txt"
DEV_INSTALL = "-r requirements-dev.txt"
NPM_INSTALL = "npm ci"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in INSTALL_INPUTS:
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "node_modules").mkdir()
    return tmp_path


def installed(project: Path, *markers: str) -> None:
    """Leave `markers` as the installs leave them: newer than every input, in this order."""
    newest = max((project / name).stat().st_mtime for name in INSTALL_INPUTS)
    for i, marker in enumerate(markers, start=1):
        (project / marker).touch()
        os.utime(project / marker, (newest + i, newest + i))


def dry_run(project: Path, target: str) -> str:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_make_run_installs_the_run_requirements_and_the_cdk_cli_not_the_dev_tools(project):
    out = dry_run(project, "run")
    assert RUN_INSTALL in out
    assert NPM_INSTALL in out
    assert DEV_INSTALL not in out
    assert out.index(RUN_INSTALL) < out.index("synth") < out.index("python -m sandbox")


def test_make_test_installs_the_run_level_then_the_dev_tools_on_top(project):
    out = dry_run(project, "test")
    assert RUN_INSTALL in out
    assert DEV_INSTALL in out
    assert out.index(RUN_INSTALL) < out.index(DEV_INSTALL)


def test_make_test_after_make_run_adds_the_dev_tools_only(project):
    installed(project, ".venv/.run-installed", "node_modules/.installed")
    out = dry_run(project, "test")
    assert DEV_INSTALL in out
    assert RUN_INSTALL not in out
    assert NPM_INSTALL not in out


def test_make_run_after_make_test_installs_nothing(project):
    installed(project, ".venv/.run-installed", "node_modules/.installed", ".venv/.installed")
    out = dry_run(project, "run")
    assert "pip install" not in out
    assert NPM_INSTALL not in out
    assert "python -m sandbox" in out


def test_a_changed_run_requirement_reinstalls_both_levels(project):
    installed(project, ".venv/.run-installed", "node_modules/.installed", ".venv/.installed")
    later = (project / ".venv" / ".installed").stat().st_mtime + 10
    os.utime(project / "requirements-run.txt", (later, later))
    assert RUN_INSTALL in dry_run(project, "run")
    out = dry_run(project, "test")
    assert out.index(RUN_INSTALL) < out.index(DEV_INSTALL)
