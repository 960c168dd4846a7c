"""The server API in the template (infra/server_api.py): every route IAM-authorized and
served by the admin function, the routes the function serves, a throttled stage with
access logs, an operator policy for exactly these routes, and the admin role's grants."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

import admin
from infra.connections_table import DATA_ACTIONS
from infra.server_api import SERVER_API_ROUTES, THROTTLE_BURST, THROTTLE_RATE
from tests.support.stack import chat_template


@pytest.fixture(scope="module")
def template() -> Template:
    return chat_template()


def http_api(template: Template) -> str:
    (api,) = template.find_resources(
        "AWS::ApiGatewayV2::Api", {"Properties": {"ProtocolType": "HTTP"}}
    )
    return str(api)


def routes(template: Template) -> list[dict[str, Any]]:
    api = http_api(template)
    return [
        route["Properties"]
        for route in template.find_resources("AWS::ApiGatewayV2::Route").values()
        if route["Properties"]["ApiId"] == {"Ref": api}
    ]


def admin_function(template: Template) -> str:
    (found,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "admin.handler"}}
    )
    return str(found)


def test_the_stacks_routes_are_the_ones_the_admin_function_serves(template):
    keys = sorted(route["RouteKey"] for route in routes(template))
    assert keys == sorted(f"{method} {path}" for method, path in SERVER_API_ROUTES)
    assert keys == sorted(admin.ROUTES)


def test_every_route_requires_iam_and_invokes_the_admin_function(template):
    resources = template.to_json()["Resources"]
    for route in routes(template):
        assert route["AuthorizationType"] == "AWS_IAM", route["RouteKey"]
        integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
        integration = resources[integration_id]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        assert integration["IntegrationUri"] == {"Fn::GetAtt": [admin_function(template), "Arn"]}


def test_the_stage_is_throttled_and_writes_json_access_logs_with_the_caller(template):
    api = http_api(template)
    (stage,) = [
        s["Properties"]
        for s in template.find_resources("AWS::ApiGatewayV2::Stage").values()
        if s["Properties"]["ApiId"] == {"Ref": api}
    ]
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": THROTTLE_BURST,
        "ThrottlingRateLimit": THROTTLE_RATE,
    }
    assert '"caller": "$context.identity.userArn"' in stage["AccessLogSettings"]["Format"]


def test_the_operator_policy_allows_invoking_exactly_the_routes(template):
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Effect"] == "Allow"
    tails = sorted(arn["Fn::Join"][1][-1] for arn in statement["Resource"])
    assert tails == ["/$default/GET/rooms", "/$default/GET/rooms/*/members"]
    for arn in statement["Resource"]:
        assert {"Ref": http_api(template)} in arn["Fn::Join"][1]
    # Attached to nobody: an administrator decides who operates the chat.
    assert "Users" not in policy["Properties"]
    assert "Roles" not in policy["Properties"]
    assert "Groups" not in policy["Properties"]


def test_the_admin_role_has_the_chat_functions_grants_and_nothing_more(template):
    resources = template.to_json()["Resources"]
    role_id = resources[admin_function(template)]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    actions = [s["Action"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert actions == [
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        sorted(DATA_ACTIONS),
        "execute-api:ManageConnections",
        "lambda:InvokeFunction",
    ]


def test_only_api_gateway_may_invoke_the_admin_function_and_only_from_this_api(template):
    permissions = [
        p["Properties"]
        for p in template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [admin_function(template), "Arn"]}
    ]
    assert len(permissions) == len(SERVER_API_ROUTES)
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert {"Ref": http_api(template)} in permission["SourceArn"]["Fn::Join"][1]


def test_the_outputs_name_the_api_and_the_policy(template):
    outputs = template.to_json()["Outputs"]
    assert "ServerApiUrl" in outputs
    assert outputs["OperatorPolicyArn"]["Value"]["Ref"].startswith("ServerApiOperatorPolicy")
