"""Alarms, the dashboard and (with `alarmEmail`) an SNS topic that e-mails the alarms.

The alarms watch AWS's own metrics (Lambda, the WebSocket API's stage, the table) and the
chat's EMF metrics (infra/metrics.py); the dashboard's widgets are in infra/dashboard.py.
Every alarm's threshold and the reason for it are in ALARMS below, in the alarm's
description and in docs/operations.md (a test keeps the three the same). Why this is plain
aws_cloudwatch rather than cdk-monitoring-constructs: docs/operations.md (Dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import DEFAULTS
from infra.dashboard import dashboard_widgets
from infra.metrics import (
    ERROR_FRAMES,
    FANOUT_SHARD_FAILURES,
    MESSAGE_RATE,
    METRIC_NAMES,
    RATE_LIMITED_FRAMES,
    ROUTES,
    STALE_CONNECTIONS_PRUNED,
    ChatMetrics,
)
from infra.nag import acknowledge

# METRIC_NAMES and ROUTES are infra/metrics.py's, named here too: the tests compare them
# with chat.telemetry's.
__all__ = [
    "ALARMS",
    "EVENTS_ALARM",
    "MESSAGE_RATE",
    "METRIC_NAMES",
    "OPTIONAL_ALARMS",
    "REVIEW_HOOK_ALARM",
    "ROUTES",
    "AlarmSpec",
    "ChatMonitoring",
]


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: what it measures, its threshold (>=, one period) and why."""

    key: str  # construct id, and the alarm name's suffix (<stack>-<key>)
    metric: str  # what it measures, as docs/operations.md names it
    statistic: str
    # FunctionDurationNearTimeout: a fraction of the function's timeout;
    # MessageRateNearAccountLimit: messageRateAlarmPerSecond's default (the key sets it).
    threshold: float
    reason: str
    period_minutes: int = 5

    def threshold_for(
        self, timeout_seconds: int, message_rate_per_second: float | None = None
    ) -> float:
        if self.key == "FunctionDurationNearTimeout":
            return round(self.threshold * timeout_seconds * 1000)
        if self.key == MESSAGE_RATE and message_rate_per_second is not None:
            return message_rate_per_second
        return self.threshold

    def description(
        self, timeout_seconds: int, message_rate_per_second: float | None = None
    ) -> str:
        threshold = self.threshold_for(timeout_seconds, message_rate_per_second)
        unit = {"FunctionDurationNearTimeout": " ms", MESSAGE_RATE: "/s"}.get(self.key, "")
        return (
            f"{self.metric} ({self.statistic}, {self.period_minutes} min) >= "
            f"{threshold:g}{unit}. {self.reason}"
        )


ALARMS: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        "FunctionErrors",
        "AWS/Lambda Errors",
        "Sum",
        5,
        "The handler answers every failure with an error frame, so Lambda counts an error "
        "only when the function crashed, timed out or could not start (an import error, bad "
        "settings); those clients got 'Internal server error' or a failed handshake.",
    ),
    AlarmSpec(
        "FunctionThrottles",
        "AWS/Lambda Throttles",
        "Sum",
        10,
        "Invocations refused because the reserved concurrency (reservedConcurrency) was all "
        "in use: those frames and handshakes were lost. Sustained, the reservation is too "
        "small for the traffic, or a flood is using it up.",
    ),
    AlarmSpec(
        "FunctionDurationNearTimeout",
        "AWS/Lambda Duration",
        "Maximum",
        0.8,
        "An invocation used 80% of its timeout (lambdaTimeoutSeconds): a slightly slower one "
        "is cut off mid-broadcast and some members miss the message. Usually a fan-out to a "
        "large room with slow posts, or DynamoDB throttling retries.",
    ),
    AlarmSpec(
        "InternalErrors",
        "Chat ErrorFrames (code INTERNAL)",
        "Sum",
        5,
        "Unexpected exceptions the handler caught and answered with INTERNAL error frames; "
        "Lambda counts them as successes, so FunctionErrors cannot see them. Their "
        "tracebacks are in the function's log (level ERROR).",
    ),
    AlarmSpec(
        "ApiIntegrationErrors",
        "AWS/ApiGateway IntegrationError",
        "Sum",
        25,
        "Requests the function answered with 4XX/5XX: a $connect refused with 403 (Origin "
        "not allowed, a sign-in without a usable name) or failed with 500 (the connection "
        "could not be recorded). A trickle is bots; this many is real clients refused.",
    ),
    AlarmSpec(
        "ApiExecutionErrors",
        "AWS/ApiGateway ExecutionError",
        "Sum",
        5,
        "API Gateway could not call the function at all (throttled, an invoke failure, or "
        "no answer within 29 s): the frames are lost and clients get 'Internal server error'.",
    ),
    AlarmSpec(
        "ApiClientErrors",
        "AWS/ApiGateway ClientError",
        "Sum",
        500,
        "4XX answered by API Gateway before the function ran: mostly 429 from the stage and "
        "route throttles (throttlingBurstLimit, routeThrottling) and, with sign-in, the "
        "authorizer's refusals. Hundreds is a flood, or throttles below real traffic.",
    ),
    AlarmSpec(
        "TableThrottles",
        "AWS/DynamoDB ReadThrottleEvents + WriteThrottleEvents",
        "Sum",
        10,
        "The on-demand table throttled: a hot partition (a room's members share one, at "
        "most 3,000 reads/s) or traffic above twice its previous peak. A throttled write or "
        "Query fails a join or a broadcast once the SDK's retries run out.",
    ),
    AlarmSpec(
        "StaleConnectionSpike",
        "Chat StaleConnectionsPruned",
        "Sum",
        100,
        "Connections found gone (410) while posting or reclaiming a name. A few are normal "
        "(tabs closed without $disconnect); this many means clients dropping en masse or "
        "$disconnect failing, and each one costs a post and a clean-up transaction.",
    ),
    AlarmSpec(
        "RateLimitedSpike",
        "Chat RateLimitedFrames",
        "Sum",
        300,
        "Frames refused with RATE_LIMITED by the per-connection token buckets (messageBurst, "
        "messageRatePerSecond, nameBurst): a flooding script or client bug, or limits below "
        "real use. 300 is about 30 clients each refused 10 times in 5 minutes.",
    ),
    AlarmSpec(
        "FanoutShardFailures",
        "Chat FanoutShardFailures",
        "Sum",
        1,
        "A fan-out worker (the FanoutWorker function) ran and failed or timed out on its "
        "shard of a big broadcast, or a shard could not be posted before the chat "
        "function's deadline (lateShards in its log): those members missed the message "
        "until their next one shows the gap and they fetch history. Any is worth a look in "
        "the logs.",
    ),
    AlarmSpec(
        MESSAGE_RATE,
        "AWS/ApiGateway MessageCount a second",
        "Sum / 60",
        DEFAULTS["messageRateAlarmPerSecond"],
        "This stage's messages in and out (frames from clients and every post to them) near "
        "the account's 10,000 requests a second, which all APIs and @connections calls in "
        "the account and Region share: past it API Gateway answers 429 to every one of "
        "them. Usually broadcasts to a big room at the broadcast routes' throttles "
        "(sendPublic, joinRoom, typing, setName), or a flood; lower routeThrottling, "
        "fanoutPostsPerSecond or maxRoomSize, or ask AWS for a higher quota.",
        period_minutes=1,
    ),
)


# Alarms of the optional integrations, created only with them (reviewHook or reviewHookArn;
# eventBusName): without them the template has neither. Not on the dashboard, which keeps
# within its 50 metrics; each is in the dashboard's alarm list only when it exists.
REVIEW_HOOK_ALARM = AlarmSpec(
    "ReviewHookFailures",
    "Chat ReviewHookFailures",
    "Sum",
    5,
    "The review hook timed out (reviewHookTimeoutMs), failed, could not be invoked or "
    "answered something that is not a decision, and reviewHookFallback decided those "
    "messages: with allow they went out unreviewed, with deny their senders got REJECTED. "
    "The chat function's log says which (review hook failed, with the reason).",
)
EVENTS_ALARM = AlarmSpec(
    "EventsFailed",
    "Chat EventsFailed",
    "Sum",
    1,
    "Events the chat could not publish to its EventBridge bus (eventBusName): refused "
    "entries, throttling, or a PutEvents call that failed or timed out. The chat went on; "
    "those events are lost to the bus's rules and their targets. The chat function's log "
    "says why (events not published).",
)
OPTIONAL_ALARMS = (REVIEW_HOOK_ALARM, EVENTS_ALARM)


class ChatMonitoring(Construct):
    """The chat's alarms and dashboard, and the optional topic the alarms notify."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        memory_mb: int,
        timeout_seconds: int,
        api: apigwv2.IWebSocketApi,
        stage_name: str,
        table: dynamodb.ITableV2,
        alarm_email: str | None,
        removal_policy: RemovalPolicy,
        message_rate_alarm_per_second: float = DEFAULTS["messageRateAlarmPerSecond"],
    ) -> None:
        super().__init__(scope, construct_id)
        metrics = ChatMetrics(
            function=function,
            api_id=api.api_id,
            stage_name=stage_name,
            table_name=table.table_name,
        )
        stack_name = Stack.of(self).stack_name

        self.topic: sns.Topic | None = None
        if alarm_email:
            self.topic = self._alarm_topic(alarm_email, removal_policy)

        alarm_metrics = _alarm_metrics(metrics)
        self.alarms: dict[str, cw.Alarm] = {}
        for spec in ALARMS:
            alarm = alarm_metrics[spec.key].create_alarm(
                self,
                spec.key,
                alarm_name=f"{stack_name}-{spec.key}",
                alarm_description=spec.description(timeout_seconds, message_rate_alarm_per_second),
                threshold=spec.threshold_for(timeout_seconds, message_rate_alarm_per_second),
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            if self.topic is not None:
                alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
                alarm.add_ok_action(cw_actions.SnsAction(self.topic))
            self.alarms[spec.key] = alarm

        self._metrics = metrics
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack_name}-{stage_name}",
            default_interval=Duration.hours(3),
            widgets=dashboard_widgets(
                metrics,
                memory_mb=memory_mb,
                timeout_seconds=timeout_seconds,
                message_rate_alarm_per_second=message_rate_alarm_per_second,
                alarms=list(self.alarms.values()),
            ),
        )

    def add_optional_alarm(self, spec: AlarmSpec) -> cw.Alarm:
        """One of OPTIONAL_ALARMS, on the chat metric its spec names, notifying the topic."""
        metric_name = spec.metric.removeprefix("Chat ")
        alarm = self._metrics.chat(metric_name).create_alarm(
            self,
            spec.key,
            alarm_name=f"{Stack.of(self).stack_name}-{spec.key}",
            alarm_description=spec.description(0),
            threshold=spec.threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        if self.topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        self.alarms[spec.key] = alarm
        return alarm

    def _alarm_topic(self, email: str, removal_policy: RemovalPolicy) -> sns.Topic:
        """An SNS topic for the alarms: KMS-encrypted, TLS only, CloudWatch may publish.

        CloudWatch cannot publish to a topic under the AWS-managed aws/sns key (its policy
        is fixed), so the topic has its own key, rotated yearly, that CloudWatch may use.
        """
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{stack.stack_name}: encrypts the alarm notification topic",
            enable_key_rotation=True,
            removal_policy=(
                RemovalPolicy.RETAIN if removal_policy == RemovalPolicy.SNAPSHOT else removal_policy
            ),
        )
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsMayUseTheKey",
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{stack.stack_name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsMayPublish",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        subscription = topic.add_subscription(subscriptions.EmailSubscription(email))
        resource = subscription.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "Serverless-SNSRedrivePolicy",
            "an e-mail of an alarm's state change: SNS retries a failed delivery, and the alarm "
            "itself stays visible in CloudWatch and on the dashboard, so a dead-letter queue "
            "would only keep copies of notifications nobody would replay",
        )
        return topic


def _alarm_metrics(metrics: ChatMetrics) -> Mapping[str, cw.Metric | cw.MathExpression]:
    """What each alarm in ALARMS watches, by its key."""
    return {
        "FunctionErrors": metrics.lambda_("Errors", "Sum"),
        "FunctionThrottles": metrics.lambda_("Throttles", "Sum"),
        "FunctionDurationNearTimeout": metrics.lambda_("Duration", "Maximum"),
        "InternalErrors": metrics.chat(ERROR_FRAMES, code="INTERNAL"),
        "ApiIntegrationErrors": metrics.api("IntegrationError"),
        "ApiExecutionErrors": metrics.api("ExecutionError"),
        "ApiClientErrors": metrics.api("ClientError"),
        "TableThrottles": metrics.table_throttles(),
        "StaleConnectionSpike": metrics.chat(STALE_CONNECTIONS_PRUNED),
        "RateLimitedSpike": metrics.chat(RATE_LIMITED_FRAMES),
        "FanoutShardFailures": metrics.chat(FANOUT_SHARD_FAILURES),
        MESSAGE_RATE: metrics.message_rate(),
    }
