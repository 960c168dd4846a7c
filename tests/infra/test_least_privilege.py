"""The function's IAM policy: exactly what lambda_src/ does, on this stack's resources only."""

from __future__ import annotations

import ast
from pathlib import Path

import botocore.session
import pytest
from aws_cdk.assertions import Template

from infra.connections_table import DATA_ACTIONS
from tests.support.stack import chat_template

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"

# boto3 DynamoDB client method → the IAM actions it needs. A transaction needs no action
# of its own, only those of its items (TRANSACTION_ITEMS); see
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
CLIENT_ACTIONS = {
    "get_item": {"dynamodb:GetItem"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "query": {"dynamodb:Query"},
    "scan": {"dynamodb:Scan"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "batch_write_item": {"dynamodb:BatchWriteItem"},
    "describe_table": {"dynamodb:DescribeTable"},
    "transact_write_items": set(),
    "transact_get_items": set(),
}
TRANSACTION_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def dynamodb_methods() -> set[str]:
    """Every boto3 DynamoDB client method name (GetItem → get_item)."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    return {botocore.xform_name(name) for name in model.operation_names}


def actions_the_code_needs() -> set[str]:
    """The IAM actions behind every DynamoDB call in lambda_src/, read from the source."""
    methods = dynamodb_methods()
    needed: set[str] = set()
    for path in LAMBDA_SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        called = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in methods
        }
        unknown = called - set(CLIENT_ACTIONS)
        assert not unknown, f"{path}: map {sorted(unknown)} to IAM actions in this test"
        for method in called:
            needed |= CLIENT_ACTIONS[method]
        if called & {"transact_write_items", "transact_get_items"}:
            # The items are dict literals: {"Put": {...}}, {"Update": {...}}, ...
            needed |= {
                TRANSACTION_ITEMS[key.value]
                for node in ast.walk(tree)
                if isinstance(node, ast.Dict)
                for key in node.keys
                if isinstance(key, ast.Constant) and key.value in TRANSACTION_ITEMS
            }
    return needed


@pytest.fixture(scope="module")
def template() -> Template:
    return chat_template()


def chat_function(template: Template) -> dict:
    """The chat function (with sign-in on, the authorizer is a second function)."""
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}}
    ).values()
    return dict(function)


def chat_policy(template: Template) -> dict:
    """The one policy attached to the chat function's role."""
    role_id = chat_function(template)["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        policy
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    assert len(policies) == 1
    return dict(policies[0]["Properties"]["PolicyDocument"])


def logical_id(template: Template, resource_type: str) -> str:
    (found,) = template.find_resources(resource_type)
    return str(found)


def test_the_stack_grants_exactly_the_dynamodb_actions_the_code_uses():
    assert set(DATA_ACTIONS) == actions_the_code_needs()


def test_the_function_policy_is_exactly_these_statements(template):
    table = logical_id(template, "AWS::DynamoDB::GlobalTable")
    (api,) = template.find_resources(
        "AWS::ApiGatewayV2::Api", {"Properties": {"ProtocolType": "WEBSOCKET"}}
    )
    log_group = chat_log_group(template)
    assert chat_policy(template) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
            },
            {
                "Action": sorted(DATA_ACTIONS),
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [table, "Arn"]},
            },
            {
                "Action": "execute-api:ManageConnections",
                "Effect": "Allow",
                "Resource": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":execute-api:",
                            {"Ref": "AWS::Region"},
                            ":",
                            {"Ref": "AWS::AccountId"},
                            ":",
                            {"Ref": api},
                            "/production/*/@connections/*",
                        ],
                    ]
                },
            },
            {
                "Action": "lambda:InvokeFunction",
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [worker_id(template), "Arn"]},
            },
        ],
    }


def worker_id(template: Template) -> str:
    (found,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.fanout_handler"}}
    )
    return str(found)


def test_the_fanout_worker_may_only_log_and_post_on_this_stage(template):
    resources = template.to_json()["Resources"]
    worker = resources[worker_id(template)]["Properties"]
    role_id = worker["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statements] == [
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        "execute-api:ManageConnections",
    ]
    assert statements[0]["Resource"] == {
        "Fn::GetAtt": [worker["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]
    }
    assert statements[1]["Resource"]["Fn::Join"][1][-1] == "/production/*/@connections/*"
    # No table: the worker's environment names none, and nothing grants one.
    assert "TABLE_NAME" not in worker["Environment"]["Variables"]
    # Only the chat function's role may invoke it: no resource policy for anyone else.
    assert not [
        p
        for p in template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [worker_id(template), "Arn"]}
        or p["Properties"]["FunctionName"] == {"Ref": worker_id(template)}
    ]


def chat_log_group(template: Template) -> str:
    return str(chat_function(template)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"])


def test_the_function_role_has_no_managed_policy_and_trusts_only_lambda(template):
    role_id = chat_function(template)["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]


def test_nothing_in_the_stack_is_allowed_on_every_resource_or_every_action(template):
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            assert statement["Resource"] != "*", statement
            assert not any(a == "*" or a.endswith(":*") for a in actions), statement
