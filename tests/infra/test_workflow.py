"""The GitHub Actions workflow (.github/workflows/ship.yml): actionlint passes, third-party
actions are pinned, every job has the least permissions, and the jobs line up with the
deploy-role stack (which GitHub subjects it trusts) and the tools they run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import DEFAULTS
from infra.deploy_role import DEPLOY_ENVIRONMENTS
from tools.conformance import parse_args as parse_conformance_args
from tools.diff_guard import ALLOW_LABEL

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SHIP = WORKFLOWS / "ship.yml"
# Every third-party action, pinned by full commit SHA with its release in a comment.
PINNED = re.compile(
    r"^\s*-?\s*uses: (?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40}) # v\d+\.\d+\.\d+$"
)
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials"
STICKY_COMMENT = "marocchino/sticky-pull-request-comment"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(SHIP.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def jobs(workflow) -> dict[str, dict[str, Any]]:
    return dict(workflow["jobs"])


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(f"{action}@")]


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(str(step["run"]) for step in job["steps"] if "run" in step)


def test_actionlint_passes_with_shellcheck():
    bin_dir = ROOT / ".venv" / "bin"
    assert (bin_dir / "actionlint").exists(), "run `make setup` (requirements-dev.txt)"
    assert (bin_dir / "shellcheck").exists(), "actionlint checks run: scripts with shellcheck"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    files = sorted(str(path) for path in WORKFLOWS.glob("*.y*ml"))
    assert files
    result = subprocess.run(
        [str(bin_dir / "actionlint"), *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_mistake(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "actionlint"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout


def test_make_lint_runs_actionlint():
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "actionlint .github/workflows/" in lint


def test_every_third_party_action_is_pinned_by_sha_with_its_version():
    uses = [line for line in SHIP.read_text().splitlines() if re.match(r"^\s*-?\s*uses:", line)]
    assert uses
    for line in uses:
        assert PINNED.match(line), f"not pinned by a full commit SHA with '# vX.Y.Z': {line}"


def test_only_the_test_job_runs_in_the_debian_container(jobs):
    assert jobs["test"]["container"] == "debian:12"
    assert all("container" not in job for name, job in jobs.items() if name != "test")


def test_nothing_is_granted_at_the_top(workflow):
    assert workflow["permissions"] == {}


def test_every_job_asks_for_the_least_it_needs(jobs):
    expected = {
        "test": {"contents": "read"},
        "diff": {"contents": "read", "id-token": "write"},
        "comment": {"pull-requests": "write"},
        "deploy-dev": {"contents": "read", "id-token": "write"},
        "deploy-prod": {"contents": "read", "id-token": "write"},
    }
    assert {name: job.get("permissions") for name, job in jobs.items()} == expected


def test_aws_credentials_only_through_oidc_roles(jobs):
    text = SHIP.read_text()
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"):
        assert forbidden not in text
    assert "secrets." not in text
    roles = {
        name: [step["with"]["role-to-assume"] for step in steps_using(job, AWS_CREDENTIALS)]
        for name, job in jobs.items()
    }
    assert roles == {
        "test": [],
        "diff": ["${{ vars.AWS_DIFF_ROLE_ARN }}"],
        "comment": [],
        "deploy-dev": ["${{ vars.AWS_DEPLOY_ROLE_ARN }}"],
        "deploy-prod": ["${{ vars.AWS_DEPLOY_ROLE_ARN }}"],
    }
    for name, job in jobs.items():
        has_token = job["permissions"].get("id-token") == "write"
        assert has_token == bool(roles[name]), name


def test_the_jobs_token_subjects_are_the_ones_the_roles_trust(jobs):
    # A job with an environment gets `sub: repo:<o/r>:environment:<name>` (the deploy role
    # trusts dev and prod); a pull-request job without one gets `…:pull_request` (the diff
    # role's only subject).
    deploy = {
        name: job.get("environment") for name, job in jobs.items() if name.startswith("deploy")
    }
    assert deploy == {"deploy-dev": "dev", "deploy-prod": "prod"}
    assert tuple(deploy.values()) == DEPLOY_ENVIRONMENTS
    assert "environment" not in jobs["diff"]
    assert jobs["diff"]["if"] == "github.event_name == 'pull_request'"


def test_pull_requests_are_tested_then_diffed_then_commented(workflow, jobs):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(on["pull_request"]["types"]) >= {"opened", "synchronize", "labeled", "unlabeled"}
    assert jobs["diff"]["needs"] == "test"
    diff = scripts(jobs["diff"])
    assert "make setup" in diff
    assert re.search(r"cdk diff .*--method template .*--fail-on never", diff)
    assert "bin/diff-guard cdk-diff.txt" in diff
    # The guard also reads a failed diff (and fails it), so the comment shows the error.
    (guard,) = [s for s in jobs["diff"]["steps"] if "bin/diff-guard" in str(s.get("run"))]
    assert guard["if"] == "always() && steps.diff.outcome != 'skipped'"
    assert (ROOT / "bin" / "diff-guard").exists()
    label_check = jobs["diff"]["steps"]
    assert any(
        f"labels.*.name, '{ALLOW_LABEL}'" in str(step.get("env", {}).get("ALLOW", ""))
        for step in label_check
    )
    comment = jobs["comment"]
    assert comment["needs"] == "diff"
    assert comment["if"].startswith("always()")
    (sticky,) = steps_using(comment, STICKY_COMMENT)
    assert sticky["with"] == {"header": "cdk-diff", "path": "cdk-diff.md"}
    # The job that can write to the pull request runs no code from it.
    assert not any("run" in step for step in comment["steps"])
    assert not steps_using(comment, "actions/checkout")


def test_main_deploys_dev_then_prod_each_followed_by_the_smoke_test(jobs):
    assert jobs["deploy-dev"]["needs"] == "test"
    assert jobs["deploy-prod"]["needs"] == "deploy-dev"
    for name, stage in (("deploy-dev", "dev"), ("deploy-prod", "prod")):
        job = jobs[name]
        assert "refs/heads/main" in job["if"]
        assert job["env"]["STAGE"] == stage
        assert job["concurrency"] == {"group": name, "cancel-in-progress": False}
        runs = [str(step["run"]) for step in job["steps"] if "run" in step]
        deploy = next(i for i, run in enumerate(runs) if run.startswith("cdk deploy"))
        assert "--require-approval never" in runs[deploy]
        assert '-c "stage=$STAGE"' in runs[deploy]
        assert "--outputs-file cdk-outputs.json" in runs[deploy]
        assert runs[deploy + 1].startswith("bin/smoke --outputs-file cdk-outputs.json")
        assert runs[deploy + 2].startswith("bin/conformance --outputs-file cdk-outputs.json")


def test_each_deploy_runs_the_conformance_suite_after_the_smoke_test_and_keeps_its_report(jobs):
    for name, stage in (("deploy-dev", "dev"), ("deploy-prod", "prod")):
        steps = jobs[name]["steps"]
        smoke = next(
            i for i, s in enumerate(steps) if str(s.get("run", "")).startswith("bin/smoke")
        )
        conformance = steps[smoke + 1]
        assert conformance["name"] == f"Conformance {stage}"
        assert "if" not in conformance  # only after a deploy and smoke test that passed
        command = shlex.split(conformance["run"])
        assert command[0] == "bin/conformance"
        # The options are ones bin/conformance takes, and the report goes where the upload reads.
        args = parse_conformance_args(command[1:])
        assert args.outputs_file == Path("cdk-outputs.json")
        assert args.json == Path(f"conformance-{stage}.json")
        # No --connections: the deploy role may not call @connections (infra/deploy_role.py).
        assert not args.connections
        upload = steps[smoke + 2]
        assert str(upload["uses"]).startswith("actions/upload-artifact@")
        assert upload["if"] == "always()"
        assert upload["with"]["name"] == f"conformance-{stage}"
        assert upload["with"]["path"] == f"conformance-{stage}.json"
    assert (ROOT / "bin" / "conformance").stat().st_mode & 0o111


def test_the_context_keys_the_workflow_passes_exist(jobs):
    text = "\n".join(scripts(job) for job in jobs.values())
    keys = {
        word.split("=", 1)[0]
        for command in text.splitlines()
        if command.startswith("cdk ")
        for option, word in zip(shlex.split(command), shlex.split(command)[1:], strict=False)
        if option == "-c"
    }
    assert keys == {"stage"}
    assert keys <= set(DEFAULTS)


def test_the_tests_run_with_chromium_installed(jobs):
    assert scripts(jobs["test"]) == "bash .ci/run"
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "chromium" in ci_run
    assert "make test" in ci_run


def test_checkouts_keep_no_token(jobs):
    for job in jobs.values():
        for step in steps_using(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False
