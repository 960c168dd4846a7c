"""checkov, an independent IaC scanner, on the synthesized template: its only findings are
the ones docs/security.md records with the reason each does not apply.

checkov pins boto3==1.35.49, which conflicts with requirements-dev.txt, so it lives in its
own virtualenv, .venv/checkov (ignored by git with .venv/), installed here from
requirements-checkov.txt on first use and again whenever that file changes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-checkov.txt"
CHECKOV_VENV = ROOT / ".venv" / "checkov"
STAMP = CHECKOV_VENV / "requirements-checkov.txt"
SECURITY_MD = ROOT / "docs" / "security.md"

pytestmark = pytest.mark.synth  # it scans what the pinned CLI synthesizes


def checkov_installed() -> Path:
    """checkov from requirements-checkov.txt in .venv/checkov (pip only when it changed)."""
    checkov = CHECKOV_VENV / "bin" / "checkov"
    wanted = REQUIREMENTS.read_text()
    if checkov.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return checkov
    venv.EnvBuilder(with_pip=True, clear=True).create(CHECKOV_VENV)
    result = subprocess.run(
        [
            str(CHECKOV_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"pip install -r {REQUIREMENTS.name}:\n{result.stderr}"
    STAMP.write_text(wanted)
    return checkov


def run_checkov(template: Path) -> dict:
    """checkov's JSON report on one CloudFormation template, offline."""
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run(
        [
            str(checkov_installed()),
            "--file",
            str(template),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--compact",
            "--skip-download",  # no platform calls: guidelines, custom policies
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    # 0: nothing failed, 1: some checks failed; anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stdout + result.stderr
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        (report,) = [r for r in report if r.get("check_type") == "cloudformation"]
    return dict(report)


NESTED_HEADING = "\n### The web client's nested stack"


def recorded_findings(nested: bool = False) -> set[tuple[str, str]]:
    """docs/security.md's checkov tables: (check id, `Type.LogicalId`) of each finding, for
    the main template, or (`nested`) for the hosted web client's nested stack."""
    section = SECURITY_MD.read_text().split("\n## checkov", 1)[1].split("\n## ", 1)[0]
    main, _, web = section.partition(NESTED_HEADING)
    rows = re.findall(
        r"^\| `(CKV\w+)` \| `([^`]+)` \|", web if nested else main, flags=re.MULTILINE
    )
    assert rows, "docs/security.md has no checkov table" + (" for the nested stack" * nested)
    return set(rows)


def failed(report: dict) -> set[tuple[str, str]]:
    return {
        (check["check_id"], check["resource"])
        for check in report.get("results", {}).get("failed_checks", [])
    }


@pytest.fixture(scope="module")
def report(chat_template_path: Path) -> dict:
    return run_checkov(chat_template_path)


@pytest.fixture(scope="module")
def nested_report(chat_template_path: Path) -> dict:
    """The hosted web client's nested stack (hostWebClient, on by default)."""
    (nested,) = chat_template_path.parent.glob("ChatStackWeb*.nested.template.json")
    return run_checkov(nested)


def test_checkov_parses_and_checks_every_resource(report):
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 20
    assert summary["passed"] > 30


@pytest.mark.parametrize("nested", [False, True], ids=["main-stack", "web-nested-stack"])
def test_checkov_finds_only_what_docs_security_md_records(request, nested):
    found = failed(request.getfixturevalue("nested_report" if nested else "report"))
    recorded = recorded_findings(nested)
    unexplained = found - recorded
    assert not unexplained, f"new checkov findings: fix them or record why in docs: {unexplained}"
    stale = recorded - found
    assert not stale, f"docs/security.md records findings checkov no longer reports: {stale}"


def test_checkov_parses_and_checks_the_nested_stack(nested_report):
    summary = nested_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 10


def test_the_concurrency_limit_finding_is_fixed(report):
    # CKV_AWS_115: function-level concurrent execution limit (reservedConcurrency).
    passed = {
        (check["check_id"], check["resource"]) for check in report["results"]["passed_checks"]
    }
    assert ("CKV_AWS_115", "AWS::Lambda::Function.ChatFunctionD42E891B") in passed
