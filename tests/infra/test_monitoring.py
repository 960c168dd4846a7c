"""Observability in the template: alarms, dashboard, alarm topic, Powertools layer, tracing,
access-log privacy; and the pins, names and docs that must agree with them."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import aws_lambda_powertools
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from infra import monitoring, powertools
from infra.chat_function import ARCHITECTURE, RUNTIME
from infra.config import ChatConfig, ConfigError
from infra.monitoring import ALARMS, MESSAGE_RATE
from infra.nag import acknowledgments
from infra.websocket_api import ACCESS_LOG_FORMAT
from tests.infra.test_nag import CDK_JSON, chat_app, validation_report
from tests.support.stack import (
    alarm_email_template,
    chat_template,
    template_with,
    websocket_resources,
)

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = {"Ref": Match.string_like_regexp("^ChatFunction")}
API = {"Ref": Match.string_like_regexp("^WebSocketApi")}
TABLE = {"Ref": Match.string_like_regexp("^ConnectionsTable")}
CHAT = [{"Name": "service", "Value": "chat"}, {"Name": "stage", "Value": "production"}]

# Every alarm: metric, namespace, statistic, threshold, dimensions (the default stack).
EXPECTED_ALARMS: dict[str, tuple[str, str, str, float, list[dict[str, Any]]]] = {
    "FunctionErrors": (
        "Errors",
        "AWS/Lambda",
        "Sum",
        5,
        [{"Name": "FunctionName", "Value": FUNCTION}],
    ),
    "FunctionThrottles": (
        "Throttles",
        "AWS/Lambda",
        "Sum",
        10,
        [{"Name": "FunctionName", "Value": FUNCTION}],
    ),
    "FunctionDurationNearTimeout": (
        "Duration",
        "AWS/Lambda",
        "Maximum",
        16000,  # 80% of the default 20 s timeout
        [{"Name": "FunctionName", "Value": FUNCTION}],
    ),
    "InternalErrors": (
        "ErrorFrames",
        "Chat",
        "Sum",
        5,
        [{"Name": "code", "Value": "INTERNAL"}, *CHAT],
    ),
    "ApiIntegrationErrors": (
        "IntegrationError",
        "AWS/ApiGateway",
        "Sum",
        25,
        [{"Name": "ApiId", "Value": API}, {"Name": "Stage", "Value": "production"}],
    ),
    "ApiExecutionErrors": (
        "ExecutionError",
        "AWS/ApiGateway",
        "Sum",
        5,
        [{"Name": "ApiId", "Value": API}, {"Name": "Stage", "Value": "production"}],
    ),
    "ApiClientErrors": (
        "ClientError",
        "AWS/ApiGateway",
        "Sum",
        500,
        [{"Name": "ApiId", "Value": API}, {"Name": "Stage", "Value": "production"}],
    ),
    "StaleConnectionSpike": ("StaleConnectionsPruned", "Chat", "Sum", 100, CHAT),
    "RateLimitedSpike": ("RateLimitedFrames", "Chat", "Sum", 300, CHAT),
    "FanoutShardFailures": ("FanoutShardFailures", "Chat", "Sum", 1, CHAT),
}


def alarm(template: Template, key: str, stack: str = "ChatStack") -> dict[str, Any]:
    found = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": f"{stack}-{key}"}}
    )
    assert len(found) == 1, key
    (resource,) = found.values()
    return dict(resource["Properties"])


def function_properties(template: Template) -> dict[str, Any]:
    found = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}}
    )
    (resource,) = found.values()
    return dict(resource["Properties"])


@functools.cache
def dashboard_body(**context: Any) -> str:
    """The dashboard's JSON with every token rendered as <Ref>, as one string."""
    template = template_with(**context) if context else chat_template()
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{next(iter(p.values()))}>" for p in parts)


def config_with(**context: Any) -> ChatConfig:
    return ChatConfig.from_context(App(context=context).node)


# --- alarms ------------------------------------------------------------------------------


def test_there_is_one_alarm_per_spec_and_no_other():
    alarms = chat_template().find_resources("AWS::CloudWatch::Alarm")
    names = sorted(a["Properties"]["AlarmName"] for a in alarms.values())
    assert names == sorted(f"ChatStack-{spec.key}" for spec in ALARMS)
    assert set(EXPECTED_ALARMS) | {"TableThrottles", MESSAGE_RATE} == {spec.key for spec in ALARMS}


@pytest.mark.parametrize("key", sorted(EXPECTED_ALARMS))
def test_each_alarm_watches_its_metric_at_its_threshold(key):
    metric, namespace, statistic, threshold, dimensions = EXPECTED_ALARMS[key]
    Template.from_json(chat_template().to_json()).has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"ChatStack-{key}",
            "MetricName": metric,
            "Namespace": namespace,
            "Statistic": statistic,
            "Threshold": threshold,
            "Period": 300,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "Dimensions": dimensions,
        },
    )


def test_table_throttles_add_read_and_write_throttle_events():
    props = alarm(chat_template(), "TableThrottles")
    assert props["Threshold"] == 10
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "reads + writes"
    stats = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    }
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/DynamoDB"
        assert stat["Metric"]["Dimensions"][0]["Name"] == "TableName"
        assert stat["Period"] == 300 and stat["Stat"] == "Sum"


def message_rate_alarm(template: Template, stack: str = "ChatStack") -> dict[str, Any]:
    """The message-rate alarm's properties, its expression and its one metric."""
    props = alarm(template, MESSAGE_RATE, stack)
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    (stat,) = [m for m in props["Metrics"] if "MetricStat" in m]
    assert stat["Id"] == "messages"
    return {"props": props, "expression": expression, "stat": stat["MetricStat"]}


def test_the_message_rate_alarm_watches_the_stages_messages_a_second_over_one_minute():
    found = message_rate_alarm(chat_template())
    props, expression, stat = found["props"], found["expression"], found["stat"]
    assert props["Threshold"] == 8000  # 80 % of the account's 10,000 requests/s
    assert props["EvaluationPeriods"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"
    # The minute's Sum divided by its 60 seconds, from API Gateway's own count.
    assert expression["Expression"] == "messages / PERIOD(messages)"
    assert expression.get("ReturnData", True) is True
    assert stat["Period"] == 60 and stat["Stat"] == "Sum"
    assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
    assert stat["Metric"]["MetricName"] == "MessageCount"
    dimensions = stat["Metric"]["Dimensions"]
    assert [d["Name"] for d in dimensions] == ["ApiId", "Stage"]
    assert dimensions[0]["Value"]["Ref"].startswith("WebSocketApi")
    assert dimensions[1]["Value"] == "production"
    assert ">= 8000/s" in props["AlarmDescription"]
    assert "(Sum / 60, 1 min)" in props["AlarmDescription"]


def test_the_message_rate_alarm_follows_its_key_and_the_stage():
    template = template_with(stage="dev", messageRateAlarmPerSecond=2000)
    found = message_rate_alarm(template, stack="Chat-dev")
    assert found["props"]["Threshold"] == 2000
    assert ">= 2000/s" in found["props"]["AlarmDescription"]
    assert found["stat"]["Metric"]["Dimensions"][1] == {"Name": "Stage", "Value": "dev"}


@pytest.mark.parametrize("value", [0, 100_001, "fast", -5])
def test_a_bad_message_rate_alarm_fails_with_the_key_named(value):
    with pytest.raises(ConfigError, match="messageRateAlarmPerSecond"):
        config_with(messageRateAlarmPerSecond=value)


def test_every_alarm_states_its_threshold_and_reason():
    template = chat_template()
    for spec in ALARMS:
        description = alarm(template, spec.key)["AlarmDescription"]
        assert spec.reason in description
        assert f">= {spec.threshold_for(20):g}" in description


def test_the_duration_alarm_follows_the_function_timeout():
    template = template_with(lambdaTimeoutSeconds=10)
    props = alarm(template, "FunctionDurationNearTimeout")
    assert props["Threshold"] == 8000
    assert ">= 8000 ms" in props["AlarmDescription"]


def test_chat_metrics_follow_the_api_stage():
    props = alarm(template_with(stage="dev"), "RateLimitedSpike", stack="Chat-dev")
    assert {"Name": "stage", "Value": "dev"} in props["Dimensions"]


def test_without_alarm_email_there_is_no_topic_and_alarms_have_no_actions():
    template = chat_template()
    assert template.find_resources("AWS::SNS::Topic") == {}
    assert template.find_resources("AWS::KMS::Key") == {}
    for spec in ALARMS:
        props = alarm(template, spec.key)
        assert "AlarmActions" not in props and "OKActions" not in props


def with_email() -> Template:
    return alarm_email_template()


def test_alarm_email_adds_an_encrypted_tls_only_topic_that_every_alarm_notifies():
    template = with_email()
    (topic_id,) = template.find_resources("AWS::SNS::Topic").keys()
    (key_id,) = template.find_resources("AWS::KMS::Key").keys()
    template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": topic_id}},
    )
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allow] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert allow[0]["Action"] == "sns:Publish"
    key = next(iter(template.find_resources("AWS::KMS::Key").values()))
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        for s in key_statements
    )
    for spec in ALARMS:
        props = alarm(template, spec.key)
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["OKActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "a@example.com,b@example.com"])
def test_a_bad_alarm_email_fails_with_the_key_named(email):
    with pytest.raises(ConfigError, match="alarmEmail"):
        config_with(alarmEmail=email)


def test_with_alarm_email_and_tracing_cdk_nag_still_passes():
    app = chat_app(alarmEmail="ops@example.com", tracing=True)
    report = validation_report(app)
    assert all(p["conclusion"] == "success" for p in report["pluginReports"])
    found = {(path, rule) for path, rule, _ in acknowledgments(app)}
    assert ("ChatStack/Chat/Role/DefaultPolicy/Resource", "AwsSolutions-IAM5[Resource::*]") in found
    assert (
        "ChatStack/Monitoring/AlarmTopic/ops@example.com/Resource",
        "Serverless-SNSRedrivePolicy",
    ) in found
    assert ("ChatStack/Chat/Function/Resource", "Serverless-LambdaTracing") not in found
    suppressed = {
        (c["constructPath"], v["ruleName"])
        for p in report["pluginReports"]
        for v in p["suppressedViolations"]
        for c in v["violatingConstructs"]
    }
    assert found == suppressed  # no acknowledgment without its finding


# --- dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_connections_messages_latency_errors_and_costs():
    body = dashboard_body()
    json.loads(re.sub(r"<[^>]+>", "x", body))  # valid JSON once tokens are filled in
    for needle in (
        '"AWS/ApiGateway","ConnectCount"',
        '"AWS/ApiGateway","MessageCount"',
        '"Chat","Posts"',
        '"Chat","FramesIn","route","sendPublic"',
        '"Chat","FanoutLatency"',
        '"Chat","PostLatency"',
        '"Chat","FanoutSize"',
        '"Chat","StaleConnectionsPruned"',
        '"Chat","RateLimitedFrames"',
        'MetricName=\\"ErrorFrames\\"',
        '"AWS/ApiGateway","IntegrationError"',
        '"AWS/ApiGateway","ExecutionError"',
        '"AWS/ApiGateway","ClientError"',
        '"AWS/Lambda","Errors"',
        '"AWS/Lambda","Throttles"',
        '"AWS/Lambda","Invocations"',
        '"AWS/DynamoDB","ConsumedReadCapacityUnits"',
        '"AWS/DynamoDB","ConsumedWriteCapacityUnits"',
        "duration / 1000 * 0.25",  # GB-seconds at 256 MB
        '"stat":"p99"',
        # messages and posts a second, against the alarm and the account's request rate
        '"expression":"messages / PERIOD(messages)"',
        '"expression":"posts / PERIOD(posts)"',
        '"value":8000,"label":"MessageRateNearAccountLimit (messageRateAlarmPerSecond)"',
        '"value":10000,"label":"the account\'s request rate (all APIs in the Region)"',
    ):
        assert needle in body, needle
    assert body.count('"type":"alarm"') == 1
    for spec in ALARMS:
        assert f"Monitoring{spec.key}" in body, spec.key


def test_the_dashboard_graphs_frames_of_every_route_within_the_free_tiers_50_metrics():
    # GIVEN the API's routes and the dashboard, its tokens filled in
    routes = {
        r["Properties"]["RouteKey"]
        for r in websocket_resources(chat_template(), "AWS::ApiGatewayV2::Route").values()
    }
    body = json.loads(re.sub(r"<[^>]+>", "x", dashboard_body()))
    metrics = [m for w in body["widgets"] for m in w.get("properties", {}).get("metrics", [])]
    # THEN FramesIn is graphed for every route, the rooms' included
    graphed = {m[3] for m in metrics if m[:3] == ["Chat", "FramesIn", "route"]}
    assert graphed == routes
    assert "typing" in graphed
    # AND the dashboard stays one of CloudWatch's free ones (up to 50 metrics each:
    # docs/costs.md, docs/aws-facts.md)
    assert len(metrics) <= 50


def test_the_dashboard_is_named_after_stack_and_stage():
    chat_template().has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "ChatStack-production"}
    )


def test_the_dashboards_alarm_line_follows_the_message_rate_key():
    body = dashboard_body(messageRateAlarmPerSecond=2500)
    assert '"value":2500,"label":"MessageRateNearAccountLimit' in body
    assert '"value":8000,' not in body


def test_gb_seconds_follow_the_function_memory():
    assert "duration / 1000 * 1" in dashboard_body(lambdaMemoryMb=1024)


# --- Powertools: the layer, the pin, the settings ----------------------------------------


def test_the_function_uses_the_public_powertools_layer_in_its_own_region():
    layers = function_properties(chat_template())["Layers"]
    assert layers == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":lambda:",
                    {"Ref": "AWS::Region"},
                    ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:36",
                ],
            ]
        }
    ]


def test_with_a_region_the_layer_arn_names_it():
    # cdk.json's feature flags, as the app has them (partition literals among them).
    stack = Stack(App(context=CDK_JSON), "Pinned", env=Environment(region="eu-west-1"))
    arn = powertools.layer_arn(stack, RUNTIME, ARCHITECTURE)
    assert arn == (
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:36"
    )


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1"])
def test_other_partitions_are_refused_rather_than_guessed(region):
    stack = Stack(App(), "Elsewhere", env=Environment(region=region))
    with pytest.raises(ValueError, match=region):
        powertools.layer_arn(stack, RUNTIME, ARCHITECTURE)


def test_layers_exist_only_for_the_runtimes_powertools_builds():
    assert powertools.layer_name(RUNTIME, ARCHITECTURE) == (
        "AWSLambdaPowertoolsPythonV3-python314-arm64"
    )
    with pytest.raises(ValueError, match=r"python3\.9"):
        powertools.layer_name(lambda_.Runtime.PYTHON_3_9, ARCHITECTURE)


def requirements_pin() -> str:
    text = (ROOT / "requirements-run.txt").read_text()
    (version,) = re.findall(r"^aws-lambda-powertools(?:\[[^\]]*\])?==(\S+)$", text, re.M)
    return version


def test_the_layer_and_the_dev_pin_are_the_same_powertools_release():
    pin = requirements_pin()
    assert pin == powertools.POWERTOOLS_VERSION
    assert aws_lambda_powertools.__version__ == pin  # what the tests and the sandbox run
    version = powertools.LAYER_VERSIONS[pin]
    layer = json.dumps(function_properties(chat_template())["Layers"])
    assert layer.endswith(f'-python314-arm64:{version}"]]}}]')


def test_the_function_gets_powertools_settings_and_never_logs_events():
    variables = function_properties(chat_template())["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "chat"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Chat"
    assert variables["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["STAGE_NAME"] == "production"


# --- tracing -----------------------------------------------------------------------------


def iam_actions(template: Template) -> set[str]:
    actions: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found = statement["Action"]
            actions.update([found] if isinstance(found, str) else found)
    return actions


def test_tracing_is_off_by_default_with_no_xray_permission():
    template = chat_template()
    props = function_properties(template)
    assert "TracingConfig" not in props
    assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert not {a for a in iam_actions(template) if a.startswith("xray:")}


def test_tracing_on_means_active_tracing_and_the_xray_permissions():
    template = template_with(tracing=True)
    props = function_properties(template)
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "false"
    xray = {a for a in iam_actions(template) if a.startswith("xray:")}
    assert xray == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


# --- access logs -------------------------------------------------------------------------


def access_log_format(template: Template) -> dict[str, str]:
    (stage,) = websocket_resources(template, "AWS::ApiGatewayV2::Stage").values()
    return dict(json.loads(stage["Properties"]["AccessLogSettings"]["Format"]))


def test_access_logs_keep_the_source_ip_by_default():
    assert access_log_format(chat_template()) == ACCESS_LOG_FORMAT
    assert "sourceIp" in ACCESS_LOG_FORMAT


def test_access_log_source_ip_false_drops_only_the_ip():
    fields = access_log_format(template_with(accessLogSourceIp=False))
    assert fields == {k: v for k, v in ACCESS_LOG_FORMAT.items() if k != "sourceIp"}
    assert "$context.identity.sourceIp" not in json.dumps(fields)


# --- names and docs that must agree ------------------------------------------------------


def test_metric_names_agree_with_the_function():
    from chat import telemetry  # noqa: PLC0415 - lambda_src, on the tests' path

    assert monitoring.METRIC_NAMES == telemetry.METRIC_NAMES
    assert (powertools.SERVICE, powertools.METRICS_NAMESPACE) == (
        telemetry.SERVICE,
        telemetry.NAMESPACE,
    )


def operations_alarm_table() -> dict[str, tuple[str, str]]:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Alarms", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


def test_docs_operations_lists_every_alarm_with_its_threshold_and_reason():
    table = operations_alarm_table()
    assert set(table) == {spec.key for spec in ALARMS}
    for spec in ALARMS:
        threshold, reason = table[spec.key]
        if spec.key == "FunctionDurationNearTimeout":
            assert threshold.startswith(f"{spec.threshold:.0%} of `lambdaTimeoutSeconds`")
        elif spec.key == MESSAGE_RATE:
            assert threshold == (
                f"`messageRateAlarmPerSecond`, {spec.threshold:g} a second over "
                f"{spec.period_minutes} minute"
            )
        else:
            assert threshold == f"{spec.threshold:g}", spec.key
        assert reason == spec.reason, spec.key


NUMBER_WORDS = {11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen"}


def test_the_docs_quote_the_number_of_alarms():
    readme = (ROOT / "README.md").read_text()
    costs = (ROOT / "docs" / "costs.md").read_text()
    assert f"CloudWatch: {NUMBER_WORDS[len(ALARMS)]} alarms (" in readme
    assert f"| {len(ALARMS)} alarms, " in costs
