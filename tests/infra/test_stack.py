"""ChatStack's template: the invariants a deploy reviewer relies on."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack, Token
from aws_cdk.assertions import Capture, Match

from app import build_app
from infra.config import ConfigError
from tests.support.stack import (
    chat_template,
    table_definition,
    template_with,
    websocket_api_id,
    websocket_resources,
)

HANDLER = "handler.lambda_handler"
# Protocol v1's routes, then the rooms' (docs/rooms-design.md §3): every one but $default
# and the connection routes names an action that runs only on it.
ROUTES = {"$connect", "$disconnect", "$default", "setName", "sendPublic", "sendPrivate"} | {
    "joinRoom",
    "leaveRoom",
    "createRoom",
    "invite",
    "typing",
    "editMessage",
    "deleteMessage",
}


@pytest.fixture(scope="module")
def template():
    return chat_template()


def the_function(template) -> dict:
    """The chat function (the stack's other function is its fan-out worker)."""
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == 3  # and the fan-out worker, and the server API's function
    (function,) = [f for f in functions.values() if f["Properties"]["Handler"] == HANDLER]
    return function


def chat_policy_statements(template) -> list[dict]:
    """The statements of the one policy on the chat function's role."""
    role_id = the_function(template)["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def the_function_id(template) -> str:
    (found,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}}
    )
    return str(found)


def test_api_is_websocket_selecting_routes_on_the_body_action(template):
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"},
    )


def test_every_route_exists_and_invokes_the_one_function(template):
    routes = websocket_resources(template, "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == ROUTES
    integrations = websocket_resources(template, "AWS::ApiGatewayV2::Integration")
    assert len(integrations) == len(ROUTES)
    function_id = the_function_id(template)
    for integration in integrations.values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert function_id in json.dumps(integration["Properties"]["IntegrationUri"])
    permissions = template.find_resources(
        "AWS::Lambda::Permission",
        {"Properties": {"FunctionName": {"Fn::GetAtt": [function_id, "Arn"]}}},
    )
    assert len(permissions) == len(ROUTES)


def test_no_route_response_so_routes_are_one_way(template):
    assert template.find_resources("AWS::ApiGatewayV2::RouteResponse") == {}


def test_function_runs_the_newest_python_on_arm64_from_lambda_src(template):
    function = the_function(template)
    props = function["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "handler.lambda_handler"
    assert props["MemorySize"] == 256
    assert props["Timeout"] == 20


def test_function_environment_wires_table_and_callback_url(template):
    env = the_function(template)["Properties"]["Environment"]["Variables"]
    (table_id,) = template.find_resources("AWS::DynamoDB::GlobalTable")
    api_id = websocket_api_id(template)
    assert env["TABLE_NAME"] == {"Ref": table_id}
    assert env["CALLBACK_URL"] == {
        "Fn::Join": [
            "",
            [
                "https://",
                {"Ref": api_id},
                ".execute-api.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
                "/production",
            ],
        ]
    }
    assert env["FANOUT_CONCURRENCY"] == "32"
    assert int(env["CONNECTION_TTL_SECONDS"]) > 2 * 3600


def test_function_logs_to_its_own_log_group_with_retention(template):
    log_group = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": {"Ref": log_group}}}
    )
    group = template.to_json()["Resources"][log_group.as_string()]
    assert group["Properties"]["RetentionInDays"] == 30


def test_table_keys_ttl_billing_recovery_and_encryption(template):
    props = table_definition(template)
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": False}  # AWS-owned key
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_table_is_destroyed_with_the_stack_by_default_and_retained_on_request():
    table = next(iter(chat_template().find_resources("AWS::DynamoDB::GlobalTable").values()))
    assert table["DeletionPolicy"] == "Delete"
    retained = template_with(removalPolicy="retain")
    table = next(iter(retained.find_resources("AWS::DynamoDB::GlobalTable").values()))
    assert table["DeletionPolicy"] == "Retain"


def test_function_may_manage_connections_on_this_api_stage_only(template):
    statements = chat_policy_statements(template)
    manage = [s for s in statements if s["Action"] == "execute-api:ManageConnections"]
    assert len(manage) == 1
    api_id = websocket_api_id(template)
    resource = manage[0]["Resource"]["Fn::Join"][1]
    assert {"Ref": api_id} in resource
    assert resource[-1] == "/production/*/@connections/*"


def test_function_may_use_only_its_table_and_no_wildcard_resources(template):
    (table_id,) = template.find_resources("AWS::DynamoDB::GlobalTable")
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Resource"] != "*"
    dynamo = [s for s in chat_policy_statements(template) if "dynamodb:GetItem" in s["Action"]]
    assert len(dynamo) == 1
    assert dynamo[0]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}


def test_stage_auto_deploys_with_explicit_throttling_and_json_access_logs(template):
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "production",
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingBurstLimit": 500, "ThrottlingRateLimit": 1000},
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
        },
    )
    (stage,) = websocket_resources(template, "AWS::ApiGatewayV2::Stage").values()
    log_format = json.loads(stage["Properties"]["AccessLogSettings"]["Format"])
    assert log_format["connectionId"] == "$context.connectionId"
    assert log_format["routeKey"] == "$context.routeKey"
    assert log_format["status"] == "$context.status"
    assert not any("body" in value for value in log_format.values())


def test_access_logs_go_to_a_log_group_with_retention(template):
    (stage,) = websocket_resources(template, "AWS::ApiGatewayV2::Stage").values()
    group_id = stage["Properties"]["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    group = template.to_json()["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 30


def test_cloudwatch_role_is_created_by_default_and_can_be_switched_off(template):
    template.resource_count_is("AWS::ApiGateway::Account", 1)
    (stage,) = websocket_resources(template, "AWS::ApiGatewayV2::Stage").values()
    (account_id,) = template.find_resources("AWS::ApiGateway::Account")
    assert account_id in stage["DependsOn"]
    without = template_with(createApiGatewayCloudWatchRole=False)
    without.resource_count_is("AWS::ApiGateway::Account", 0)
    assert len(websocket_resources(without, "AWS::ApiGatewayV2::Stage")) == 1


def test_context_overrides_stage_name_and_throttling():
    template = template_with(stageName="dev", throttlingBurstLimit=10, throttlingRateLimit=20)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "dev",
            "DefaultRouteSettings": {"ThrottlingBurstLimit": 10, "ThrottlingRateLimit": 20},
        },
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("throttlingBurstLimit", 0),
        ("throttlingRateLimit", "fast"),
        ("removalPolicy", "keep"),
        ("logRetentionDays", 31),
        ("lambdaTimeoutSeconds", 60),
        ("connectionTtlSeconds", 3600),
        ("stageName", "my stage"),
        ("createApiGatewayCloudWatchRole", "maybe"),
    ],
)
def test_bad_context_values_fail_synth_with_the_key_named(key, value):
    with pytest.raises(ConfigError, match=key):
        template_with(**{key: value})


def test_outputs_give_the_websocket_url_callback_url_and_table_name(template):
    outputs = template.to_json()["Outputs"]
    assert {"WebSocketUrl", "CallbackUrl", "TableName"} <= set(outputs)
    assert "wss://" in json.dumps(outputs["WebSocketUrl"]["Value"])
    assert "https://" in json.dumps(outputs["CallbackUrl"]["Value"])


def test_stack_is_environment_agnostic_unless_account_and_region_are_given():
    default = Stack.of(build_app().node.find_child("ChatStack"))
    assert Token.is_unresolved(default.account) and Token.is_unresolved(default.region)
    located = build_app({"account": "123456789012", "region": "eu-west-1"})
    stack = Stack.of(located.node.find_child("ChatStack"))
    assert (stack.account, stack.region) == ("123456789012", "eu-west-1")


def test_the_fanout_worker_is_the_same_code_with_one_vcpu_and_the_posting_settings(template):
    functions = template.find_resources("AWS::Lambda::Function")
    chat = the_function(template)["Properties"]
    (worker,) = [
        f["Properties"]
        for f in functions.values()
        if f["Properties"]["Handler"] == "handler.fanout_handler"
    ]
    assert worker["Code"] == chat["Code"]  # one asset: lambda_src/
    assert worker["Layers"] == chat["Layers"]
    assert (worker["Runtime"], worker["Architectures"]) == (chat["Runtime"], chat["Architectures"])
    assert worker["MemorySize"] == 1769
    # The worker times out 3 s before the chat function, which waits for it; the chat
    # function learns the worker's timeout to size its Invoke read timeout.
    assert worker["Timeout"] == chat["Timeout"] - 3 == 17
    assert chat["Environment"]["Variables"]["FANOUT_WORKER_TIMEOUT_SECONDS"] == "17"
    assert "ReservedConcurrentExecutions" not in worker
    variables = worker["Environment"]["Variables"]
    assert variables["FANOUT_CONCURRENCY"] == "192"
    assert variables["FANOUT_ENGINE"] == "socket"
    assert variables["CALLBACK_URL"] == chat["Environment"]["Variables"]["CALLBACK_URL"]
    assert chat["Environment"]["Variables"]["FANOUT_WORKER"] == {
        "Ref": next(k for k, f in functions.items() if f["Properties"] is worker)
    }
    assert chat["Environment"]["Variables"]["FANOUT_SHARD_SIZE"] == "250"


def test_the_fanout_worker_settings_come_from_context():
    custom = template_with(
        fanoutShardSize=500,
        fanoutWorkerMemoryMb=3008,
        fanoutWorkerConcurrency=64,
        fanoutWorkerReservedConcurrency=20,
    )
    functions = custom.find_resources("AWS::Lambda::Function").values()
    by_handler = {f["Properties"]["Handler"]: f["Properties"] for f in functions}
    worker = by_handler["handler.fanout_handler"]
    assert worker["MemorySize"] == 3008
    assert worker["ReservedConcurrentExecutions"] == 20
    assert worker["Environment"]["Variables"]["FANOUT_CONCURRENCY"] == "64"
    chat = by_handler["handler.lambda_handler"]["Environment"]["Variables"]
    assert chat["FANOUT_SHARD_SIZE"] == "500"
