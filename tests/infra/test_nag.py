"""cdk-nag runs on every synth: the acknowledged findings are exactly these, and a new one fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, CfnResource, Duration, Stack, Validations
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import ServerlessChecks
from constructs import Construct

from app import build_app, main
from infra.config import DEFAULTS, ChatConfig, RouteThrottle
from infra.nag import (
    acknowledge,
    acknowledgments,
    add_rule_packs,
    review_outside_nag,
    reviews_outside_nag,
    unacknowledged_findings,
    unseen_by_nag,
)
from infra.websocket_api import ChatWebSocketApi

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())["context"]

# The whole list, (resource path, rule id): a new acknowledgment must be added here on purpose.
ACKNOWLEDGED = [
    (
        "ChatStack/Chat/Role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
        "<AWS::AccountId>:<WebSocketApi273F6915>/production/*/@connections/*]",
    ),
    ("ChatStack/Chat/Function/Resource", "Serverless-LambdaDLQ"),
    ("ChatStack/Chat/Function/Resource", "Serverless-LambdaTracing"),
    # The fan-out worker (infra/chat_function.py, the same construct).
    (
        "ChatStack/FanoutWorker/Role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
        "<AWS::AccountId>:<WebSocketApi273F6915>/production/*/@connections/*]",
    ),
    ("ChatStack/FanoutWorker/Function/Resource", "Serverless-LambdaDLQ"),
    ("ChatStack/FanoutWorker/Function/Resource", "Serverless-LambdaTracing"),
    # The server API's function (the same construct) and its operator policy.
    (
        "ChatStack/Admin/Role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
        "<AWS::AccountId>:<WebSocketApi273F6915>/production/*/@connections/*]",
    ),
    ("ChatStack/Admin/Function/Resource", "Serverless-LambdaDLQ"),
    ("ChatStack/Admin/Function/Resource", "Serverless-LambdaTracing"),
    (
        "ChatStack/ServerApi/OperatorPolicy/Resource",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
        "<AWS::AccountId>:<ServerApi3A342CF6>/$default/GET/rooms/*/members]",
    ),
    ("ChatStack/WebSocket/Api/$connect-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/$disconnect-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/$default-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/setName-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/sendPublic-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/sendPrivate-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/joinRoom-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/leaveRoom-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/createRoom-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/invite-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/typing-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/editMessage-Route/Resource", "AwsSolutions-APIG4"),
    ("ChatStack/WebSocket/Api/deleteMessage-Route/Resource", "AwsSolutions-APIG4"),
    (
        "ChatStack/WebSocket/CloudWatchRole/Resource",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
    ),
    # The hosted web client (infra/hosting.py, nested stack Web).
    ("ChatStack/Web/Distribution/Resource", "AwsSolutions-CFR1"),
    ("ChatStack/Web/Distribution/Resource", "AwsSolutions-CFR2"),
    ("ChatStack/Web/Distribution/Resource", "AwsSolutions-CFR4"),
    (
        "ChatStack/Web/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C/Resource",
        "AwsSolutions-L1",
    ),
    (
        "ChatStack/Web/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C/Resource",
        "Serverless-LambdaLatestVersion",
    ),
    (
        "ChatStack/Web/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C/Resource",
        "Serverless-LambdaDLQ",
    ),
    (
        "ChatStack/Web/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C/Resource",
        "Serverless-LambdaTracing",
    ),
    (
        "ChatStack/Web/DeployRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<Bucket83908E77.Arn>/*]",
    ),
]


def failed_report(app: App) -> dict:
    """Synthesize, expecting cdk-nag to fail it; the report it points at."""
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    path = re.search(r"found in: (\S+)", str(failure.value))
    assert path, failure.value
    return json.loads(Path(path.group(1)).read_text())


def chat_app(**context) -> App:
    return build_app({**CDK_JSON, **context})


def chat_stack(app: App) -> Stack:
    return Stack.of(app.node.find_child("ChatStack"))


def resource(construct: Construct) -> CfnResource:
    child = construct.node.default_child
    assert isinstance(child, CfnResource)
    return child


def validation_report(app: App) -> dict:
    assembly = app.synth()
    return json.loads((Path(assembly.directory) / "validation-report.json").read_text())


@pytest.fixture(scope="module")
def app() -> App:
    return chat_app()


@pytest.fixture(scope="module")
def report(app) -> dict:
    return validation_report(app)


def test_both_packs_run_and_pass(report):
    conclusions = {p["pluginName"]: p["conclusion"] for p in report["pluginReports"]}
    assert conclusions == {"AwsSolutions": "success", "Serverless": "success"}
    assert all(p["violations"] == [] for p in report["pluginReports"])


def test_the_acknowledged_findings_are_exactly_the_pinned_list(app):
    found = [(path, rule) for path, rule, _ in acknowledgments(app)]
    assert sorted(found) == sorted(ACKNOWLEDGED)


def test_every_acknowledgment_is_on_one_resource_and_gives_a_reason(app):
    for path, rule, reason in acknowledgments(app):
        assert path.endswith("/Resource"), (path, rule)
        assert len(reason) >= 40 and rule.split("[")[0] not in reason, (path, rule, reason)
    # Nothing on the app or the stack, which would cover resources added later.
    assert not [a for a in acknowledgments(app) if a[0].count("/") < 2]


def test_every_acknowledgment_suppresses_a_finding_that_still_occurs(report):
    suppressed = {
        (construct["constructPath"], violation["ruleName"])
        for plugin in report["pluginReports"]
        for violation in plugin["suppressedViolations"]
        for construct in violation["violatingConstructs"]
    }
    assert suppressed == set(ACKNOWLEDGED)


def test_an_unacknowledged_error_fails_synth():
    app = chat_app()
    sqs.Queue(chat_stack(app), "Unreviewed")  # no DLQ, no SSL-only policy
    report = failed_report(app)
    violations = [v for p in report["pluginReports"] for v in p["violations"]]
    assert {v["ruleName"] for v in violations} >= {"AwsSolutions-SQS3", "AwsSolutions-SQS4"}
    assert {c["constructPath"] for v in violations for c in v["violatingConstructs"]} == {
        "ChatStack/Unreviewed/Resource"
    }


def add_function_with_only_a_warning(stack: Stack) -> None:
    """A function whose one finding is Serverless-LambdaTracing, a warning."""
    role = iam.Role(stack, "BareRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    function = lambda_.Function(
        stack,
        "Unreviewed",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
        memory_size=256,
        timeout=Duration.seconds(5),
        role=role,
        log_group=logs.LogGroup(stack, "UnreviewedLogs", retention=logs.RetentionDays.ONE_DAY),
    )
    acknowledge(
        resource(function),
        "Serverless-LambdaDLQ",
        "test: leave Serverless-LambdaTracing, a warning, as the only finding",
    )


def test_an_unacknowledged_warning_fails_synth_too():
    app = chat_app()
    add_function_with_only_a_warning(chat_stack(app))
    report = failed_report(app)
    violations = [v for p in report["pluginReports"] for v in p["violations"]]
    assert [(v["ruleName"], v["severity"]) for v in violations] == [
        ("Serverless-LambdaTracing", "warning")
    ]


def test_app_exits_non_zero_on_a_warning_that_cdk_alone_lets_through():
    # Under the CLI, CDK reports a warning but succeeds; app.main() fails the synth instead.
    app = App()
    Validations.of(app).add_plugins(ServerlessChecks(app))
    add_function_with_only_a_warning(Stack(app, "Test"))
    assert unacknowledged_findings(app.synth()) == [
        "WARNING Serverless-LambdaTracing at Test/Unreviewed/Resource"
    ]
    with pytest.raises(SystemExit, match="Serverless-LambdaTracing at Test/Unreviewed"):
        main(app)


def test_app_main_passes_the_chat_app():
    main(chat_app())


def test_connect_route_with_an_authorizer_is_not_acknowledged():
    app = App()
    add_rule_packs(app)
    stack = Stack(app, "Test")
    handler = lambda_.Function(
        stack,
        "Handler",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )
    config = ChatConfig.from_context(app.node)
    ChatWebSocketApi(
        stack,
        "WebSocket",
        handler=handler,
        stage_name="production",
        throttling_burst_limit=10,
        throttling_rate_limit=10,
        route_throttling={"$connect": RouteThrottle(burst=1, rate=1)},
        create_cloudwatch_role=False,
        log_retention=config.log_retention,
        removal_policy=config.removal_policy,
        connect_authorizer=authorizers.WebSocketLambdaAuthorizer("SignIn", handler),
    )
    routes = {path for path, rule, _ in acknowledgments(stack) if rule == "AwsSolutions-APIG4"}
    assert "Test/WebSocket/Api/$connect-Route/Resource" not in routes
    assert len(routes) == 12  # $disconnect, $default and the ten message routes


def test_acknowledge_refuses_a_parent_construct_a_short_reason_or_another_pack():
    stack = Stack(App(), "Test")
    queue = sqs.Queue(stack, "Queue")
    with pytest.raises(TypeError):
        acknowledge(queue, "AwsSolutions-SQS3", "x" * 60)
    with pytest.raises(ValueError, match="why"):
        acknowledge(resource(queue), "AwsSolutions-SQS3", "fine")
    with pytest.raises(ValueError, match="not a rule"):
        acknowledge(resource(queue), "HIPAA.Security-SQS", "x" * 60)


@pytest.mark.parametrize(
    "context",
    [
        {"createApiGatewayCloudWatchRole": False},
        {"reservedConcurrency": 0},
        {"removalPolicy": "retain"},
        {"stageName": "dev", "stackName": "ChatDev"},
        {"autoDeleteBuckets": True},
        {"autoDeleteBuckets": True, "stage": "prod"},
    ],
)
def test_other_configurations_synthesize_clean(context):
    assert set(context) <= set(DEFAULTS)
    app = chat_app(**context)
    report = validation_report(app)
    assert all(p["conclusion"] == "success" for p in report["pluginReports"])
    assert unseen_by_nag(app) == []


# --- what cdk-nag cannot see ---------------------------------------------------------------

AUTO_DELETE_PROVIDER = "ChatStack/Web/Custom::S3AutoDeleteObjectsCustomResourceProvider"


def test_the_default_app_has_nothing_cdk_nag_cannot_see(app):
    assert unseen_by_nag(app) == []
    assert reviews_outside_nag(app) == []


def test_a_plain_cfn_resource_of_an_aws_type_is_unseen_until_it_is_reviewed():
    app = chat_app()
    stack = chat_stack(app)
    raw = CfnResource(
        stack,
        "RawRole",
        type="AWS::IAM::Role",
        properties={
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "ManagedPolicyArns": [
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ],
        },
    )
    CfnResource(stack, "Custom", type="Custom::Anything", properties={"ServiceToken": "x"})
    # cdk-nag passes over it: the synth succeeds with no finding on it.
    report = validation_report(app)
    assert all(p["conclusion"] == "success" for p in report["pluginReports"])
    assert "ChatStack/RawRole" not in json.dumps(report)
    assert unseen_by_nag(app) == ["ChatStack/RawRole"]  # custom types have no nag rules
    review_outside_nag(raw, "test: a role reviewed by hand, with what it can do and why")
    assert unseen_by_nag(app) == []


def test_review_outside_nag_refuses_a_construct_or_a_short_reason():
    stack = Stack(App(), "Test")
    queue = sqs.Queue(stack, "Queue")
    with pytest.raises(TypeError):
        review_outside_nag(queue, "x" * 60)
    with pytest.raises(ValueError, match="what the resource can do"):
        review_outside_nag(resource(queue), "fine")


@pytest.fixture(scope="module")
def auto_delete_app() -> App:
    return chat_app(autoDeleteBuckets=True)


def test_with_auto_delete_buckets_the_provider_is_reviewed_not_acknowledged(auto_delete_app):
    report = validation_report(auto_delete_app)
    assert all(p["conclusion"] == "success" for p in report["pluginReports"])
    # cdk-nag 3.0.2 reports nothing on the provider (plain CfnResources): if an upgrade
    # starts to, acknowledge its findings with a reason and record them in docs/security.md.
    assert AUTO_DELETE_PROVIDER not in json.dumps(report)
    found = [(path, rule) for path, rule, _ in acknowledgments(auto_delete_app)]
    assert sorted(found) == sorted(ACKNOWLEDGED)
    reviews = dict(reviews_outside_nag(auto_delete_app))
    assert set(reviews) == {f"{AUTO_DELETE_PROVIDER}/Role", f"{AUTO_DELETE_PROVIDER}/Handler"}
    assert unseen_by_nag(auto_delete_app) == []
    assert "AWSLambdaBasicExecutionRole" in reviews[f"{AUTO_DELETE_PROVIDER}/Role"]
    assert "s3:PutBucketPolicy" in reviews[f"{AUTO_DELETE_PROVIDER}/Role"]


def test_docs_security_md_records_each_review_word_for_word(auto_delete_app):
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("\n## The web bucket's auto-delete role", 1)[1].split("\n## ", 1)[0]
    rows = {
        match.group(1): match.group(2).replace("`", "")
        for match in re.finditer(r"^\| `([^`]+)` \| `[^`]+` \| (.+) \|$", section, re.M)
    }
    assert rows == dict(reviews_outside_nag(auto_delete_app))


def test_with_sign_in_connect_is_authorized_and_the_app_still_synthesizes_clean(tmp_path):
    from tests.support.sign_in import fake_layer  # noqa: PLC0415

    app = chat_app(
        signIn=True,
        signInIssuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
        signInAudience="chat-app-client-id",
        signInLayerDir=str(fake_layer(tmp_path)),
    )
    report = validation_report(app)
    assert all(p["conclusion"] == "success" for p in report["pluginReports"])
    assert all(p["violations"] == [] for p in report["pluginReports"])
    connect = "ChatStack/WebSocket/Api/$connect-Route/Resource"
    assert connect not in {path for path, _, _ in acknowledgments(app)}
    # Every default acknowledgment but $connect's is still there, unchanged.
    found = {(path, rule) for path, rule, _ in acknowledgments(app)}
    assert set(ACKNOWLEDGED) - found == {(connect, "AwsSolutions-APIG4")}
