"""Abuse limits in the template (reserved concurrency, per-route stage throttles) and the
account-level CloudWatch role that must outlive the stack."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from infra.config import DEFAULTS, THROTTLED_ROUTES
from tests.support.stack import chat_template, template_with


@pytest.fixture(scope="module")
def template() -> Template:
    return chat_template()


def chat_function(template: Template) -> dict:
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}}
    ).values()
    return dict(function)


def the_stage(template: Template) -> dict:
    (stage,) = template.find_resources("AWS::ApiGatewayV2::Stage").values()
    return dict(stage)


def test_function_has_the_configured_reserved_concurrency(template):
    props = chat_function(template)["Properties"]
    assert props["ReservedConcurrentExecutions"] == DEFAULTS["reservedConcurrency"] == 100
    other = template_with(reservedConcurrency=7)
    assert chat_function(other)["Properties"]["ReservedConcurrentExecutions"] == 7


def test_reserved_concurrency_zero_means_no_reservation():
    props = chat_function(template_with(reservedConcurrency=0))["Properties"]
    assert "ReservedConcurrentExecutions" not in props


def test_stage_throttles_each_route_as_configured_and_keeps_the_default(template):
    props = the_stage(template)["Properties"]
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": DEFAULTS["throttlingBurstLimit"],
        "ThrottlingRateLimit": DEFAULTS["throttlingRateLimit"],
    }
    assert props["RouteSettings"] == {
        route: {"ThrottlingBurstLimit": limits["burst"], "ThrottlingRateLimit": limits["rate"]}
        for route, limits in DEFAULTS["routeThrottling"].items()
    }
    assert set(props["RouteSettings"]) == set(THROTTLED_ROUTES)
    assert "$disconnect" not in props["RouteSettings"]  # never drop the clean-up event


def test_stage_is_created_after_the_routes_its_settings_name(template):
    # API Gateway rejects RouteSettings for a route key it does not know yet.
    stage = the_stage(template)
    routes = template.find_resources("AWS::ApiGatewayV2::Route")
    throttled = {
        logical_id
        for logical_id, route in routes.items()
        if route["Properties"]["RouteKey"] in THROTTLED_ROUTES
    }
    assert len(throttled) == len(THROTTLED_ROUTES)
    assert throttled <= set(stage["DependsOn"])


def test_route_throttling_from_the_command_line_overrides_only_what_it_names():
    # `-c routeThrottling=...` arrives as a JSON string.
    template = template_with(routeThrottling=json.dumps({"sendPublic": {"rate": 5}}))
    settings = the_stage(template)["Properties"]["RouteSettings"]
    defaults = DEFAULTS["routeThrottling"]
    assert settings["sendPublic"] == {
        "ThrottlingBurstLimit": defaults["sendPublic"]["burst"],
        "ThrottlingRateLimit": 5,
    }
    assert settings["$connect"] == {
        "ThrottlingBurstLimit": defaults["$connect"]["burst"],
        "ThrottlingRateLimit": defaults["$connect"]["rate"],
    }


def test_cloudwatch_role_and_account_setting_outlive_the_stack(template):
    (account,) = template.find_resources("AWS::ApiGateway::Account").values()
    assert account["DeletionPolicy"] == account["UpdateReplacePolicy"] == "Retain"
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["DeletionPolicy"] == role["UpdateReplacePolicy"] == "Retain"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }


def test_everything_else_follows_the_removal_policy(template):
    # Only the account-level pair is retained unconditionally (removalPolicy=destroy here).
    retained = sorted(
        resource["Type"]
        for resource in template.to_json()["Resources"].values()
        if resource.get("DeletionPolicy") == "Retain"
    )
    assert retained == ["AWS::ApiGateway::Account", "AWS::IAM::Role"]
