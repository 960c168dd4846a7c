"""Abuse limits in the template (reserved concurrency, per-route stage throttles) and the
account-level CloudWatch role that must outlive the stack."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.config import DEFAULTS, THROTTLED_ROUTES
from infra.websocket_api import MESSAGE_ROUTES, ROOM_ROUTES
from tests.support.stack import chat_template, template_with, websocket_resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    return chat_template()


def chat_function(template: Template) -> dict:
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}}
    ).values()
    return dict(function)


def the_stage(template: Template) -> dict:
    (stage,) = websocket_resources(template, "AWS::ApiGatewayV2::Stage").values()
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
    routes = websocket_resources(template, "AWS::ApiGatewayV2::Route")
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


# --- the rooms' routes (docs/security.md#route-throttles) ------------------------------------

# Posts one frame on each broadcast route makes per member of the room (a join or rename
# also sends the member list, up to memberListThreshold members).
BROADCASTS = {
    "setName": "join",
    "joinRoom": "join",
    "leaveRoom": "join",
    "sendPublic": "message",
    "typing": "message",
    "editMessage": "message",
    "deleteMessage": "message",
}
ACCOUNT_REQUESTS_PER_SECOND = 10_000


def test_every_route_but_disconnect_has_its_own_throttle():
    assert set(THROTTLED_ROUTES) == {"$connect", "$default", *MESSAGE_ROUTES}
    assert set(ROOM_ROUTES) <= set(MESSAGE_ROUTES)
    assert set(DEFAULTS["routeThrottling"]) == set(THROTTLED_ROUTES)


def test_each_broadcast_route_alone_stays_within_the_accounts_request_rate():
    # GIVEN a full room with the default settings
    size, threshold = DEFAULTS["maxRoomSize"], DEFAULTS["memberListThreshold"]
    posts = {
        "message": size,
        "join": max(size, 2 * min(size, threshold)),  # the notice, and the list up to threshold
    }
    assert set(BROADCASTS) | {"$connect", "$default", "sendPrivate", "createRoom", "invite"} == (
        set(THROTTLED_ROUTES)
    )
    # THEN no broadcast route's steady rate can post more than the account allows a second
    for route, kind in BROADCASTS.items():
        rate = DEFAULTS["routeThrottling"][route]["rate"]
        assert rate * posts[kind] <= ACCOUNT_REQUESTS_PER_SECOND, route


def test_room_creation_is_the_rarest_route_and_typing_is_as_frequent_as_messages():
    limits = DEFAULTS["routeThrottling"]
    assert limits["createRoom"]["rate"] == min(limit["rate"] for limit in limits.values())
    assert limits["typing"]["rate"] == limits["sendPublic"]["rate"]
    assert limits["typing"]["burst"] > limits["sendPublic"]["burst"]
    assert limits["joinRoom"]["rate"] > limits["setName"]["rate"]


def test_security_md_states_each_routes_default_throttle():
    # GIVEN docs/security.md's table of route throttles
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    section = page.split("\n## Route throttles\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \| (\d+) \|", section, flags=re.M)
    # THEN it has one row per throttled route, with the defaults
    assert {route: (int(b), int(r)) for route, b, r in rows} == {
        route: (limit["burst"], limit["rate"])
        for route, limit in DEFAULTS["routeThrottling"].items()
    }
    assert len(rows) == len(THROTTLED_ROUTES)


def test_every_message_route_invokes_the_chat_function_and_is_throttled(template):
    # WHEN the stack is synthesized THEN each room route exists, like sendPublic's
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in websocket_resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    integrations = websocket_resources(template, "AWS::ApiGatewayV2::Integration")
    settings = the_stage(template)["Properties"]["RouteSettings"]
    for route in ROOM_ROUTES:
        target = routes[route]["Target"]["Fn::Join"][1][-1]["Ref"]
        assert integrations[target]["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert settings[route] == {
            "ThrottlingBurstLimit": DEFAULTS["routeThrottling"][route]["burst"],
            "ThrottlingRateLimit": DEFAULTS["routeThrottling"][route]["rate"],
        }
    assert "listRooms" not in routes and "markRead" not in routes  # $default serves them
