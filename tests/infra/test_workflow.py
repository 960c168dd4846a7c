"""The GitHub Actions workflow (.github/workflows/ship.yml): actionlint passes, third-party
actions are pinned, every job has the least permissions, and the jobs line up with the
deploy-role stack (which GitHub subjects it trusts) and the tools they run."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App

from infra.config import DEFAULTS, ChatConfig
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
SETUP_PYTHON = "actions/setup-python"
SETUP_NODE = "actions/setup-node"
CACHE = "actions/cache"
AWS_JOBS = ("diff", "deploy-dev", "deploy-prod")
CONFIGURED = "steps.aws.outputs.configured == 'true'"
# The status checks docs/deploy.md tells a repository to require.
REQUIRED_CHECKS = ("make test", "cdk diff")


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
        # Only after a deploy and smoke test that passed (no always(), no failure()).
        assert conformance["if"] == CONFIGURED
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
        assert upload["if"] == f"always() && {CONFIGURED}"
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


# --- GitHub's expressions, enough of them to evaluate this workflow's `if`, `name` and
# `concurrency` for a given event (https://docs.github.com/en/actions/reference/workflows-and-actions/expressions):
# literals, context properties (a missing one is null), == != ! && || (which, as in Python,
# return an operand), parentheses and format().
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+)|(?P<op>&&|\|\||==|!=|!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][\w.-]*))"
)


def _format(template: str, *args: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m[1])]), template)


def evaluate(expression: str, github: Mapping[str, Any]) -> Any:
    """The value of a GitHub expression (with or without `${{ }}`) for this `github` context."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    python: list[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match, f"cannot read {text[position:]!r}"
        position = match.end()
        if match["string"] is not None:
            python.append(repr(match["string"][1:-1].replace("''", "'")))
        elif match["number"] is not None:
            python.append(match["number"])
        elif match["op"] is not None:
            python.append({"&&": " and ", "||": " or ", "!": " not "}.get(match["op"], match["op"]))
        elif match["name"] in ("true", "false", "null"):
            python.append({"true": "True", "false": "False", "null": "None"}[match["name"]])
        elif match["name"] == "format":
            python.append("format_")
        else:
            python.append(f"context({match['name']!r})")

    def context(path: str) -> Any:
        value: Any = {"github": github}
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    functions: dict[str, Callable[..., Any]] = {"context": context, "format_": _format}
    return eval("".join(python), {"__builtins__": {}}, functions)  # our own tokens only


def value(field: str, github: Mapping[str, Any]) -> Any:
    """A `name:` or `group:` field: a literal unless it is one `${{ }}` expression."""
    return evaluate(field, github) if field.strip().startswith("${{") else field


def pull_request(action: str, label: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"action": action, "pull_request": {"number": 42}}
    if label is not None:
        event["label"] = {"name": label}
    return {"event_name": "pull_request", "event": event, "run_id": 1001}


PUSH = {"event_name": "push", "ref": "refs/heads/main", "event": {}, "run_id": 1002}
RUN_ON = [
    ("push to main", PUSH),
    ("workflow_dispatch", {**PUSH, "event_name": "workflow_dispatch"}),
    ("opened", pull_request("opened")),
    ("synchronize", pull_request("synchronize")),
    ("reopened", pull_request("reopened")),
    ("labeled allow-destructive", pull_request("labeled", ALLOW_LABEL)),
    ("unlabeled allow-destructive", pull_request("unlabeled", ALLOW_LABEL)),
]
IGNORED = [
    ("labeled documentation", pull_request("labeled", "documentation")),
    ("unlabeled documentation", pull_request("unlabeled", "documentation")),
]


def test_the_expression_reader_reads_what_github_would():
    github = pull_request("labeled", "x")
    assert evaluate("${{ github.event.label.name == 'x' && 'a' || 'b' }}", github) == "a"
    assert evaluate("github.event.missing.deeper == null", github) is True
    assert evaluate("${{ !(github.event_name == 'push') }}", github) is True
    assert evaluate("format('g-{0}-{1}', github.run_id, 'x')", github) == "g-1001-x"
    assert evaluate("github.event.nothing || github.run_id", github) == 1001


@pytest.mark.parametrize(("event", "github"), RUN_ON, ids=[name for name, _ in RUN_ON])
def test_pushes_pull_requests_and_the_allow_destructive_label_run_the_checks(
    workflow, jobs, event, github
):
    assert evaluate(jobs["test"]["if"], github) is True
    assert value(jobs["test"]["name"], github) == "make test"
    if github["event_name"] == "pull_request":
        # The diff runs after the tests (no always(): skipped tests skip it).
        assert evaluate(jobs["diff"]["if"], github) is True
        assert value(jobs["diff"]["name"], github) == "cdk diff"
        group = value(workflow["concurrency"]["group"], github)
        assert group == "ship-42"  # one group per pull request: a newer run replaces the older
        assert evaluate(workflow["concurrency"]["cancel-in-progress"], github) is True
    else:
        assert value(workflow["concurrency"]["group"], github) == f"ship-{github['run_id']}"
        assert evaluate(workflow["concurrency"]["cancel-in-progress"], github) is False


@pytest.mark.parametrize(("event", "github"), IGNORED, ids=[name for name, _ in IGNORED])
def test_another_label_runs_nothing_cancels_nothing_and_leaves_the_required_checks_alone(
    workflow, jobs, event, github
):
    # make test is skipped, and with it the diff that needs it (and the comment).
    assert evaluate(jobs["test"]["if"], github) is False
    assert jobs["diff"]["needs"] == "test"
    assert "always()" not in jobs["diff"]["if"]
    assert jobs["comment"]["needs"] == "diff"
    # A skipped job's check passes a required check and replaces an earlier failed one of the
    # same name: no skipped job may carry a required name, evaluated or not.
    for name in ("test", "diff"):
        assert value(jobs[name]["name"], github) not in REQUIRED_CHECKS
        assert jobs[name]["name"] not in REQUIRED_CHECKS
    # Its own concurrency group: it cancels no run of the pull request.
    group = value(workflow["concurrency"]["group"], github)
    assert group == f"ship-ignored-{github['run_id']}"
    assert group != value(workflow["concurrency"]["group"], pull_request("synchronize"))
    on = workflow.get("on", workflow.get(True))
    assert github["event"]["action"] in on["pull_request"]["types"]


def test_the_checks_a_repository_requires_are_the_names_the_jobs_run_under(jobs):
    names = {value(jobs[name]["name"], pull_request("opened")) for name in ("test", "diff")}
    assert names == set(REQUIRED_CHECKS)
    deploy_md = (ROOT / "docs" / "deploy.md").read_text()
    assert "the status checks `make test` and `cdk diff`" in deploy_md


def test_jobs_with_a_static_name_are_never_required_checks(jobs):
    for name, job in jobs.items():
        if "${{" not in str(job.get("name", "")):
            assert job.get("name", name) not in REQUIRED_CHECKS, name


# --- Without AWS settings: a notice, not a failure ---------------------------------------


def aws_settings_step(job: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    (found,) = [(i, s) for i, s in enumerate(job["steps"]) if s.get("id") == "aws"]
    return found


def run_aws_settings(step: dict[str, Any], tmp_path: Path, **variables: str):
    output = tmp_path / "github-output"
    output.write_text("")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GITHUB_OUTPUT": str(output),
        "ROLE_VARIABLE": step["env"]["ROLE_VARIABLE"],
        **variables,
    }
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, output.read_text()


@pytest.mark.parametrize("name", AWS_JOBS)
def test_without_aws_variables_an_aws_job_gives_a_notice_and_passes(jobs, name, tmp_path):
    _, step = aws_settings_step(jobs[name])
    result, output = run_aws_settings(step, tmp_path, REGION="", ROLE="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("::notice title=No AWS settings")
    assert f"vars.{step['env']['ROLE_VARIABLE']} are not set" in result.stdout
    assert output == "configured=false\n"


@pytest.mark.parametrize("name", AWS_JOBS)
def test_half_the_aws_variables_fail_the_job(jobs, name, tmp_path):
    _, step = aws_settings_step(jobs[name])
    for region, role in (("eu-west-1", ""), ("", "arn:aws:iam::123456789012:role/r")):
        result, output = run_aws_settings(step, tmp_path, REGION=region, ROLE=role)
        assert result.returncode == 1
        assert result.stdout.startswith("::error title=Half the AWS settings")
        assert output == ""


@pytest.mark.parametrize("name", AWS_JOBS)
def test_with_both_aws_variables_the_job_goes_ahead(jobs, name, tmp_path):
    _, step = aws_settings_step(jobs[name])
    result, output = run_aws_settings(
        step, tmp_path, REGION="eu-west-1", ROLE="arn:aws:iam::123456789012:role/r"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert output == "configured=true\n"


@pytest.mark.parametrize("name", AWS_JOBS)
def test_every_step_after_the_aws_settings_waits_for_them(jobs, name):
    job = jobs[name]
    index, step = aws_settings_step(job)
    # It reads the variables the job signs in with (in a step, so that a deploy job also
    # sees its environment's variables, which a job-level `if` would not).
    (credentials,) = steps_using(job, AWS_CREDENTIALS)
    role = step["env"]["ROLE_VARIABLE"]
    assert step["env"] == {
        "REGION": "${{ vars.AWS_REGION }}",
        "ROLE": f"${{{{ vars.{role} }}}}",
        "ROLE_VARIABLE": role,
    }
    assert credentials["with"]["role-to-assume"] == f"${{{{ vars.{role} }}}}"
    assert credentials["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    before = job["steps"][:index]
    assert all("uses" not in s for s in before)  # nothing checked out or installed before
    for later in job["steps"][index + 1 :]:
        condition = str(later.get("if", ""))
        # The guard runs when the diff ran, and the diff waits for the settings.
        assert CONFIGURED in condition or condition == "always() && steps.diff.outcome != 'skipped'"
        assert "failure()" not in condition


def test_the_aws_settings_step_is_the_same_in_every_job(jobs):
    steps = [aws_settings_step(jobs[name])[1] for name in AWS_JOBS]
    assert len({step["run"] for step in steps}) == 1
    assert len({step["name"] for step in steps}) == 1


def test_no_diff_comment_without_a_diff(jobs):
    assert jobs["diff"]["outputs"]["aws"] == "${{ steps.aws.outputs.configured }}"
    assert "needs.diff.outputs.aws == 'true'" in jobs["comment"]["if"]


# --- Caches, and only what synth needs --------------------------------------------------


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, version = line.split("==")
            pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def third_party_imports(*files: Path, top_level_only: bool = False) -> set[str]:
    found = set()
    for path in files:
        tree = ast.parse(path.read_text())
        for node in tree.body if top_level_only else ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    local = {"infra", "tools", "sandbox", "__future__"}
    return {name for name in found if name not in sys.stdlib_module_names and name not in local}


@pytest.mark.parametrize(
    ("name", "requirements"),
    [
        ("diff", "requirements.txt"),
        ("deploy-dev", "requirements-deploy.txt"),
        ("deploy-prod", "requirements-deploy.txt"),
    ],
)
def test_the_aws_jobs_install_only_what_they_run_from_cached_downloads(jobs, name, requirements):
    job = jobs[name]
    (python,) = steps_using(job, SETUP_PYTHON)
    assert python["with"]["cache"] == "pip"
    cached = set(python["with"]["cache-dependency-path"].split())
    assert cached == {"requirements.txt", requirements}  # every file pip reads
    (node,) = steps_using(job, SETUP_NODE)
    assert node["with"] == {
        "node-version": "22",
        "cache": "npm",
        "cache-dependency-path": "package-lock.json",
    }
    (install,) = [s for s in job["steps"] if "pip install" in str(s.get("run", ""))]
    assert install["env"] == {"REQUIREMENTS": requirements}
    assert '-r "$REQUIREMENTS"' in install["run"]
    assert "npm ci " in install["run"]
    text = yaml.safe_dump(job)
    for heavy in ("make setup", "requirements-dev.txt", "playwright", "bench"):
        assert heavy not in text, heavy


def test_requirements_txt_is_what_the_cdk_app_imports():
    app = [ROOT / "app.py", *sorted((ROOT / "infra").glob("*.py"))]
    # jsii comes with aws-cdk-lib.
    assert third_party_imports(*app) <= {"aws_cdk", "constructs", "cdk_nag", "jsii"}
    assert set(requirement_pins(ROOT / "requirements.txt")) == {
        "aws-cdk-lib",
        "constructs",
        "cdk-nag",
    }


def test_requirements_deploy_txt_adds_what_smoke_and_conformance_import_at_the_dev_pins():
    deploy = ROOT / "requirements-deploy.txt"
    assert "-r requirements.txt" in deploy.read_text().splitlines()
    pins = requirement_pins(deploy)
    # requirements-dev.txt includes requirements-run.txt, where websockets is pinned.
    dev = requirement_pins(ROOT / "requirements-run.txt") | requirement_pins(
        ROOT / "requirements-dev.txt"
    )
    assert pins and all(dev.get(name) == version for name, version in pins.items()), pins
    # boto3 only on paths the pipeline does not take (--stack, --connections).
    tools = [ROOT / "tools" / "smoke.py", ROOT / "tools" / "conformance.py"]
    third_party = third_party_imports(*tools, top_level_only=True)
    assert third_party == set(pins) == {"websockets"}


def test_make_test_keeps_pips_and_npms_downloads_between_runs(jobs):
    steps = jobs["test"]["steps"]
    (cache,) = steps_using(jobs["test"], CACHE)
    assert set(cache["with"]["path"].split()) == {"~/.cache/pip", "~/.npm"}
    assert "hashFiles('requirements*.txt', 'package-lock.json')" in cache["with"]["key"]
    assert cache["with"]["key"].startswith(cache["with"]["restore-keys"])
    make_test = next(i for i, s in enumerate(steps) if s.get("run") == "bash .ci/run")
    assert steps.index(cache) < make_test


# --- The account's Lambda concurrency for the pipeline's stages --------------------------

# Lambda keeps 100 of the account's concurrency for functions without a reservation
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
LAMBDA_UNRESERVED_MINIMUM = 100


def reserved_by(stage: str) -> int:
    config = ChatConfig.from_context(App(context={"stage": stage}).node)
    return config.reserved_concurrency + config.fanout_worker_reserved_concurrency


def test_the_docs_ask_for_the_concurrency_quota_both_stages_need():
    one = LAMBDA_UNRESERVED_MINIMUM + reserved_by(DEPLOY_ENVIRONMENTS[0])
    both = LAMBDA_UNRESERVED_MINIMUM + sum(reserved_by(stage) for stage in DEPLOY_ENVIRONMENTS)
    assert (one, both) == (200, 300)  # 100 + 100 each, today
    readme = " ".join((ROOT / "README.md").read_text().split())
    deploy_md = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert f"quota of at least {one}" in readme
    for text in (readme, deploy_md):
        assert f"quota of at least {both}" in text
        assert "configuration-concurrency.html" in text
