"""The deploy-role stack: only with githubRepository, trusted only for this repository's
deploy environments (and its pull requests, for the read-only diff role), and allowed nothing
but sts:AssumeRole on the CDK bootstrap roles. cdk-nag checks it like the chat stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from app import build_app
from infra.config import DEFAULTS, ConfigError
from infra.deploy_role import (
    BOOTSTRAP_ROLE_KINDS,
    DEPLOY_ENVIRONMENTS,
    DEPLOY_ROLE_STACK_NAME,
    GITHUB_OIDC_HOST,
    DeployRoleStack,
    GitHubDeployConfig,
)
from infra.nag import acknowledgments, unacknowledged_findings
from tests.support.synth import run_cdk

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())["context"]
REPO = "octo-org/websocket-chat"
EXISTING_PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{GITHUB_OIDC_HOST}"


def role_app(**context: Any) -> App:
    return build_app({**CDK_JSON, "githubRepository": REPO, **context})


def role_stack(app: App) -> DeployRoleStack:
    stack = app.node.find_child(DEPLOY_ROLE_STACK_NAME)
    assert isinstance(stack, DeployRoleStack)
    return stack


def role_template(**context: Any) -> Template:
    return Template.from_stack(role_stack(role_app(**context)))


def render(value: Any) -> Any:
    """A CloudFormation value as text: Fn::Join of strings and Refs becomes "a${Ref}b"."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(render(part)) for part in parts)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return "${" + value["Ref"] + "}"
    if isinstance(value, list):
        return [render(item) for item in value]
    return value


def roles(template: Template) -> dict[str, dict[str, Any]]:
    """The stack's roles by logical id prefix (DeployRole, DiffRole)."""
    found = template.find_resources("AWS::IAM::Role")
    return {
        next(name for name in ("DeployRole", "DiffRole") if logical.startswith(name)): dict(role)
        for logical, role in found.items()
    }


def bootstrap_arn(kind: str) -> str:
    return (
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-hnb659fds-"
        f"{kind}-role-${{AWS::AccountId}}-${{AWS::Region}}"
    )


@pytest.fixture(scope="module")
def template() -> Template:
    return role_template()


def test_the_default_app_has_no_deploy_role_stack():
    app = build_app(CDK_JSON)
    assert DEFAULTS["githubRepository"] == ""
    assert [child.node.id for child in app.node.children if isinstance(child, Stack)] == [
        "ChatStack"
    ]


def test_github_repository_adds_the_stack_beside_the_chat():
    app = role_app()
    names = sorted(child.node.id for child in app.node.children if isinstance(child, Stack))
    assert names == sorted(["ChatStack", DEPLOY_ROLE_STACK_NAME])


def test_it_creates_githubs_oidc_provider_for_sts(template):
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)
    template.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {"Url": f"https://{GITHUB_OIDC_HOST}", "ClientIdList": ["sts.amazonaws.com"]},
    )


def test_an_existing_provider_is_imported_instead():
    template = role_template(githubOidcProviderArn=EXISTING_PROVIDER)
    template.resource_count_is("AWS::IAM::OIDCProvider", 0)
    for role in roles(template).values():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Federated": EXISTING_PROVIDER}


def test_the_deploy_role_trusts_only_the_deploy_environments_of_this_repository(template):
    role = roles(template)["DeployRole"]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": {"Ref": template_provider_id(template)}}
    # Exact matches only: no StringLike, no wildcard, no branch or pull-request subject.
    assert statement["Condition"] == {
        "StringEquals": {
            f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
            f"{GITHUB_OIDC_HOST}:sub": [
                f"repo:{REPO}:environment:dev",
                f"repo:{REPO}:environment:prod",
            ],
        }
    }
    assert DEPLOY_ENVIRONMENTS == ("dev", "prod")


def test_the_diff_role_trusts_only_this_repositorys_pull_requests(template):
    role = roles(template)["DiffRole"]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
            f"{GITHUB_OIDC_HOST}:sub": [f"repo:{REPO}:pull_request"],
        }
    }


def template_provider_id(template: Template) -> str:
    (logical_id,) = template.find_resources("AWS::IAM::OIDCProvider")
    return logical_id


def only_statement(role: dict[str, Any]) -> dict[str, Any]:
    (policy,) = role["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    return dict(statement)


def test_the_deploy_roles_only_permission_is_assuming_the_bootstrap_roles(template):
    statement = only_statement(roles(template)["DeployRole"])
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert render(statement["Resource"]) == [bootstrap_arn(kind) for kind in BOOTSTRAP_ROLE_KINDS]
    assert BOOTSTRAP_ROLE_KINDS == ("deploy", "file-publishing", "image-publishing", "lookup")


def test_the_diff_role_may_only_assume_the_read_only_lookup_role(template):
    statement = only_statement(roles(template)["DiffRole"])
    assert statement["Action"] == "sts:AssumeRole"
    assert render(statement["Resource"]) == bootstrap_arn("lookup")


def test_nothing_else_grants_anything(template):
    assert set(roles(template)) == {"DeployRole", "DiffRole"}
    template.resource_count_is("AWS::IAM::Policy", 0)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 0)
    for role in roles(template).values():
        assert "ManagedPolicyArns" not in role["Properties"]
    types = {resource["Type"] for resource in template.to_json()["Resources"].values()}
    assert types <= {"AWS::IAM::OIDCProvider", "AWS::IAM::Role", "AWS::CDK::Metadata"}


def test_a_custom_bootstrap_qualifier_names_its_roles():
    template = role_template(**{"@aws-cdk/core:bootstrapQualifier": "chat42"})
    statement = only_statement(roles(template)["DiffRole"])
    assert "cdk-chat42-lookup-role-" in json.dumps(statement["Resource"])


def test_the_outputs_name_the_github_variables(template):
    outputs = template.to_json()["Outputs"]
    assert "AWS_DEPLOY_ROLE_ARN" in outputs["DeployRoleArn"]["Description"]
    assert "AWS_DIFF_ROLE_ARN" in outputs["DiffRoleArn"]["Description"]


@pytest.mark.parametrize(
    "repository",
    [
        "octo-org",
        "octo-org/",
        "/chat",
        "octo org/chat",
        "octo-org/chat/extra",
        "-octo/chat",
        "octo--org/chat",
        "octo-org/..",
        "octo-org/chat*",
        "octo-org/ch at",
    ],
)
def test_a_malformed_repository_is_refused_naming_the_key(repository):
    with pytest.raises(ConfigError, match="githubRepository"):
        GitHubDeployConfig.from_context(App(context={"githubRepository": repository}).node)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:oidc-provider/accounts.google.com",
        "arn:aws:iam::1234:oidc-provider/token.actions.githubusercontent.com",
        "token.actions.githubusercontent.com",
    ],
)
def test_a_wrong_provider_arn_is_refused_naming_the_key(arn):
    context = {"githubRepository": REPO, "githubOidcProviderArn": arn}
    with pytest.raises(ConfigError, match="githubOidcProviderArn"):
        GitHubDeployConfig.from_context(App(context=context).node)


def test_a_bad_value_fails_the_synth():
    with pytest.raises(ConfigError, match="githubRepository"):
        role_app(githubRepository="not a repository")


def test_cdk_nag_passes_without_any_acknowledgment():
    app = role_app()
    assert unacknowledged_findings(app.synth()) == []
    assert acknowledgments(role_stack(app)) == []


def test_cdk_nag_checks_this_stack_too():
    # The rule packs are added to the app, so they cover every stack in it.
    app = role_app()
    role_stack(app).deploy_role.add_to_policy(
        iam.PolicyStatement(actions=["s3:*"], resources=["*"])
    )
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


@pytest.mark.synth
def test_the_pinned_cli_synthesizes_both_stacks_offline(tmp_path):
    result = run_cdk(
        *("synth", "--quiet", "--output", str(tmp_path)), *("-c", f"githubRepository={REPO}")
    )
    assert result.returncode == 0, result.stderr
    template = json.loads((tmp_path / f"{DEPLOY_ROLE_STACK_NAME}.template.json").read_text())
    assert {r["Type"] for r in template["Resources"].values()} >= {"AWS::IAM::Role"}
