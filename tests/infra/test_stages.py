"""Stages side by side (`-c stage=dev`, `-c stage=prod`): independent stacks with their own
names, and prod's protection and log retention; without a stage, the stack of old."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from app import build_app
from infra.config import DEFAULTS, ChatConfig, ConfigError

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())["context"]

# Properties that give a resource its physical name. AttributeName, IndexName and an IAM
# policy's PolicyName (scoped to its role) name nothing in the account.
NAME_KEYS = {
    "Name",
    "StageName",
    "TableName",
    "FunctionName",
    "LogGroupName",
    "BucketName",
    "RoleName",
    "LayerName",
    "TopicName",
    "QueueName",
    "AlarmName",
    "DashboardName",
    "ParameterName",
    "ManagedPolicyName",
    "SecretName",
    "RuleName",
    "StateMachineName",
}
REFERENCES = {"Ref", "Fn::GetAtt"}


@dataclass
class StageSynth:
    app: App
    stack_name: str
    templates: list[dict[str, Any]]  # the stack's, then its nested stacks'

    @property
    def stack(self) -> dict[str, Any]:
        return self.templates[0]

    def resources(self, kind: str) -> list[dict[str, Any]]:
        return [
            resource
            for template in self.templates
            for resource in template["Resources"].values()
            if resource["Type"] == kind
        ]


def synthesize(**context: Any) -> StageSynth:
    app = build_app({**CDK_JSON, **context})
    assembly = app.synth()
    (stack,) = assembly.stacks
    directory = Path(assembly.directory)
    templates = [json.loads((directory / stack.template_file).read_text())]
    templates += [
        json.loads(p.read_text()) for p in sorted(directory.glob("*.nested.template.json"))
    ]
    return StageSynth(app=app, stack_name=stack.stack_name, templates=templates)


@pytest.fixture(scope="module")
def dev() -> StageSynth:
    return synthesize(stage="dev")


@pytest.fixture(scope="module")
def prod() -> StageSynth:
    return synthesize(stage="prod")


def physical_names(properties: dict[str, Any]) -> Iterator[str]:
    """The names a resource's properties give it, rendered to text; references (Ref,
    GetAtt) name another resource and are skipped. CloudFront's names sit in its *Config."""
    for key, value in properties.items():
        if key.endswith("Config") and isinstance(value, dict) and "Name" in value:
            yield from physical_names({"Name": value["Name"]})
        elif key in NAME_KEYS and not (isinstance(value, dict) and set(value) <= REFERENCES):
            yield value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def names_of(synth: StageSynth) -> set[str]:
    return {
        name
        for template in synth.templates
        for resource in template["Resources"].values()
        for name in physical_names(resource.get("Properties", {}))
    }


def test_each_stage_is_its_own_stack(dev, prod):
    assert (dev.stack_name, prod.stack_name) == ("Chat-dev", "Chat-prod")
    assert [s.stack_name for s in dev.app.synth().stacks] == ["Chat-dev"]
    # The WebSocket stage is named after the stage; the server API's is `$default`.
    (dev_stage,) = [
        s
        for s in dev.resources("AWS::ApiGatewayV2::Stage")
        if s["Properties"]["StageName"] != "$default"
    ]
    (prod_stage,) = [
        s
        for s in prod.resources("AWS::ApiGatewayV2::Stage")
        if s["Properties"]["StageName"] != "$default"
    ]
    assert dev_stage["Properties"]["StageName"] == "dev"
    assert prod_stage["Properties"]["StageName"] == "prod"
    for synth, stage in ((dev, "dev"), (prod, "prod")):
        assert synth.stack["Description"].endswith(f"(stage {stage})")
        names = sorted(
            api["Properties"]["Name"] for api in synth.resources("AWS::ApiGatewayV2::Api")
        )
        assert names == [synth.stack_name, f"{synth.stack_name}-server"]
        for output in synth.stack["Outputs"].values():
            if "Description" in output:
                assert output["Description"].endswith(f"({synth.stack_name})")
        assert "/" + stage in json.dumps(synth.stack["Outputs"]["WebSocketUrl"])


def test_the_stages_share_no_physical_name(dev, prod):
    # `$default`, the server API's stage, is a name within its own API (every HTTP API has
    # one), not a name in the account or Region.
    dev_names, prod_names = names_of(dev) - {"$default"}, names_of(prod) - {"$default"}
    # The API's, the stage's and CloudFront's two names at least are explicit.
    assert len(dev_names) >= 4 and len(prod_names) >= 4, dev_names
    assert dev_names.isdisjoint(prod_names), dev_names & prod_names
    # Everything else is named by CloudFormation after its stack, whose names differ.
    for name in dev_names:
        assert "Chat-dev" in name or name in {'"dev"', "dev"}, name


def test_prod_is_protected_and_keeps_its_logs_a_year(prod):
    assert prod.app.synth().get_stack_by_name("Chat-prod").termination_protection is True
    groups = prod.resources("AWS::Logs::LogGroup")
    assert len(groups) >= 3  # the function's, the access logs', the web deployment's
    for group in groups:
        assert group["Properties"]["RetentionInDays"] == 365
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"
    (log_bucket,) = [
        b for b in prod.resources("AWS::S3::Bucket") if "LifecycleConfiguration" in b["Properties"]
    ]
    assert log_bucket["DeletionPolicy"] == "Retain"
    assert log_bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 365
    # The table and the page's bucket follow removalPolicy (destroy): nothing in them lasts.
    (table,) = prod.resources("AWS::DynamoDB::GlobalTable")
    assert table["DeletionPolicy"] == "Delete"


def test_dev_is_not_protected_and_keeps_the_default_retention(dev):
    assert dev.app.synth().get_stack_by_name("Chat-dev").termination_protection is False
    for group in dev.resources("AWS::Logs::LogGroup"):
        assert group["Properties"]["RetentionInDays"] == DEFAULTS["logRetentionDays"]
        assert group["DeletionPolicy"] == "Delete"


def test_without_a_stage_the_stack_is_the_one_it_always_was():
    config = ChatConfig.from_context(App(context=CDK_JSON).node)
    assert config.stage is None
    assert (config.stack_name, config.stage_name) == ("ChatStack", "production")
    assert config.termination_protection is False
    assert config.log_removal_policy == config.removal_policy


def config_with(**context: Any) -> ChatConfig:
    return ChatConfig.from_context(App(context=context).node)


def test_a_key_given_explicitly_wins_over_the_stage():
    config = config_with(
        stage="prod", logRetentionDays=731, terminationProtection="false", stackName="ChatProd"
    )
    assert config.stack_name == "ChatProd"
    assert config.stage_name == "prod"
    assert config.termination_protection is False
    assert str(config.log_retention) == str(config_with(logRetentionDays=731).log_retention)
    assert config_with(stage="dev", logRemovalPolicy="retain").log_removal_policy == (
        config_with(removalPolicy="retain").removal_policy
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stage", "Prod"),
        ("stage", "1dev"),
        ("stage", "dev_1"),
        ("stage", "x" * 25),
        ("stage", "dev stage"),
        ("stackName", "Chat Stack"),
        ("stackName", "1Chat"),
        ("terminationProtection", "maybe"),
        ("logRemovalPolicy", "snapshot"),
        ("logRemovalPolicy", "keep"),
        ("hostWebClient", "perhaps"),
    ],
)
def test_bad_stage_values_fail_with_the_key_named(key, value):
    with pytest.raises(ConfigError, match=re.escape(key)):
        config_with(**{key: value})
