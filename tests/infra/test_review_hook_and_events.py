"""The optional integrations in the stack: the review hook (reviewHook, reviewHookArn) and
events out (eventBusName). Absent, the template is what it was; present, each is exactly
one grant, one environment variable or two, and one alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import ConfigError
from infra.monitoring import OPTIONAL_ALARMS
from tests.infra.test_least_privilege import chat_function, chat_policy
from tests.support.stack import ROOT, chat_template, template_with

HOOK_DIR = "hooks/wordlist"
HOOK_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:my-review"
BUS_ARN = "arn:aws:events:eu-west-1:123456789012:event-bus/chat-events"
INTEGRATION_VARIABLES = {
    "REVIEW_HOOK",
    "REVIEW_HOOK_TIMEOUT_MS",
    "REVIEW_HOOK_FALLBACK",
    "EVENT_BUS",
    "EVENTS_INCLUDE_BODIES",
}


def variables(template: Template) -> dict[str, Any]:
    return dict(chat_function(template)["Properties"]["Environment"]["Variables"])


def statements(template: Template, action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in chat_policy(template)["Statement"]
        if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


def resources(template: Template, action: str) -> list[Any]:
    """Every resource `action` is allowed on (CDK merges statements of one action)."""
    found: list[Any] = []
    for statement in statements(template, action):
        resource = statement["Resource"]
        found.extend(resource if isinstance(resource, list) else [resource])
    return found


def alarm_names(template: Template) -> set[str]:
    return {
        a["Properties"]["AlarmName"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


@pytest.fixture(scope="module")
def hooked() -> Template:
    return template_with(reviewHook=HOOK_DIR)


def test_without_a_hook_or_a_bus_the_template_has_nothing_of_them():
    template = chat_template()
    assert not INTEGRATION_VARIABLES & set(variables(template))
    assert statements(template, "events:PutEvents") == []
    (worker,) = resources(template, "lambda:InvokeFunction")  # the fan-out worker's only
    assert worker["Fn::GetAtt"][0].startswith("FanoutWorker")
    assert not [k for k in template.find_resources("AWS::Lambda::Function") if "Review" in k]
    assert not {"ChatStack-ReviewHookFailures", "ChatStack-EventsFailed"} & alarm_names(template)


def test_a_hook_directory_becomes_a_function_the_chat_may_invoke_exactly(hooked):
    (hook_id, hook) = next(
        (k, v)
        for k, v in hooked.find_resources("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "handler.handler"
    )
    assert hook_id.startswith("ReviewHook")
    assert hook["Properties"]["Timeout"] == 2  # a second past the 200 ms wait, rounded up
    assert hook["Properties"]["MemorySize"] == 128
    env = variables(hooked)
    assert env["REVIEW_HOOK"] == {"Ref": hook_id}
    assert (env["REVIEW_HOOK_TIMEOUT_MS"], env["REVIEW_HOOK_FALLBACK"]) == ("200", "allow")
    invokes = resources(hooked, "lambda:InvokeFunction")
    assert {"Fn::GetAtt": [hook_id, "Arn"]} in invokes
    assert len(invokes) == 2  # the worker's and the hook's, each on one unqualified ARN
    # AND the hook's own role may only write its log group
    role_id = hook["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p
        for p in hooked.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    # AND its failures have an alarm
    assert "ChatStack-ReviewHookFailures" in alarm_names(hooked)
    assert not INTEGRATION_VARIABLES - {"EVENT_BUS", "EVENTS_INCLUDE_BODIES"} - set(env)


def test_an_existing_hook_is_invoked_by_its_arn_and_nothing_is_built():
    template = template_with(
        reviewHookArn=HOOK_ARN, reviewHookTimeoutMs=500, reviewHookFallback="deny"
    )
    env = variables(template)
    assert env["REVIEW_HOOK"] == HOOK_ARN
    assert (env["REVIEW_HOOK_TIMEOUT_MS"], env["REVIEW_HOOK_FALLBACK"]) == ("500", "deny")
    assert HOOK_ARN in resources(template, "lambda:InvokeFunction")
    assert set(template.find_resources("AWS::Lambda::Function")) == set(
        chat_template().find_resources("AWS::Lambda::Function")
    )


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"reviewHook": "hooks/nothing-here"}, "reviewHook='hooks/nothing-here' must be a dir"),
        ({"reviewHookArn": "my-review"}, "reviewHookArn='my-review' must be a Lambda"),
        ({"reviewHook": HOOK_DIR, "reviewHookArn": HOOK_ARN}, "both set"),
        ({"reviewHookFallback": "maybe"}, "reviewHookFallback='maybe' must be one of"),
        ({"eventBusName": "bad bus"}, "eventBusName='bad bus' must be an EventBridge"),
    ],
)
def test_bad_integration_settings_fail_synth_naming_the_key(context, message):
    with pytest.raises(ConfigError, match=message):
        template_with(**context)


def test_a_bus_name_grants_put_events_on_exactly_that_bus():
    template = template_with(eventBusName="chat-events")
    env = variables(template)
    assert (env["EVENT_BUS"], env["EVENTS_INCLUDE_BODIES"]) == ("chat-events", "false")
    (statement,) = statements(template, "events:PutEvents")
    assert statement["Action"] == "events:PutEvents"
    assert json.dumps(statement["Resource"]).endswith(':event-bus/chat-events"]]}')
    assert "ChatStack-EventsFailed" in alarm_names(template)
    assert "REVIEW_HOOK" not in env


def test_a_bus_arn_is_granted_as_given_and_bodies_follow_their_key():
    template = template_with(eventBusName=BUS_ARN, eventsIncludeBodies=True)
    (statement,) = statements(template, "events:PutEvents")
    assert statement["Resource"] == BUS_ARN
    assert variables(template)["EVENTS_INCLUDE_BODIES"] == "true"


def test_docs_operations_gives_each_optional_alarm_its_threshold_and_reason():
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Review hook", 1)[1].split("\n## ", 1)[0]
    for spec in OPTIONAL_ALARMS:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{spec.key}`"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{spec.metric} ({spec.statistic})"
        assert cells[2] == f"{spec.threshold:g}"
        assert cells[3] == spec.reason


def test_the_server_apis_function_publishes_to_the_same_bus_and_only_to_it():
    template = template_with(eventBusName="chat-events")
    resources_ = template.to_json()["Resources"]
    (admin_id,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "admin.handler"}}
    )
    admin = resources_[admin_id]["Properties"]
    assert admin["Environment"]["Variables"]["EVENT_BUS"] == "chat-events"
    role_id = admin["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    (statement,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "events:PutEvents"
    ]
    assert json.dumps(statement["Resource"]).endswith(':event-bus/chat-events"]]}')
