"""Alarms, a dashboard and (with `alarmEmail`) an SNS topic that e-mails the alarms.

The alarms watch AWS's own metrics (Lambda, the WebSocket API's stage, the table) and the
chat's EMF metrics (namespace `Chat`, dimensions `service` and `stage`; written by
lambda_src/chat/telemetry.py through Powertools). Every alarm's threshold and the reason
for it are in ALARMS below, in the alarm's description and in docs/operations.md (a test
keeps the three the same).

Plain aws_cloudwatch rather than cdk-monitoring-constructs: that library (10.3.3 installs
cleanly next to aws-cdk-lib 2.275.0) has no WebSocket API monitoring and takes a v1
`ITable`, not the `TableV2` here, so everything but the Lambda alarms would be custom
metrics anyway, and each synth would load one more jsii bundle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
from infra.function_settings import METRIC_NAMES as METRIC_NAME
from infra.nag import acknowledge
from infra.powertools import METRICS_NAMESPACE, SERVICE
from infra.websocket_api import ACCESS_LOG_FORMAT

# The chat's EMF metrics, named in lambda_src/chat/settings.json (chat.telemetry reads it too).
FRAMES_IN = METRIC_NAME["FRAMES_IN"]
ERROR_FRAMES = METRIC_NAME["ERROR_FRAMES"]
RATE_LIMITED_FRAMES = METRIC_NAME["RATE_LIMITED_FRAMES"]
FANOUT_SIZE = METRIC_NAME["FANOUT_SIZE"]
FANOUT_LATENCY = METRIC_NAME["FANOUT_LATENCY"]
POSTS = METRIC_NAME["POSTS"]
POST_FAILURES = METRIC_NAME["POST_FAILURES"]
POST_LATENCY = METRIC_NAME["POST_LATENCY"]
STALE_CONNECTIONS_PRUNED = METRIC_NAME["STALE_CONNECTIONS_PRUNED"]
FANOUT_SHARDS = METRIC_NAME["FANOUT_SHARDS"]
FANOUT_SHARD_FAILURES = METRIC_NAME["FANOUT_SHARD_FAILURES"]
METRIC_NAMES = tuple(METRIC_NAME.values())
ROUTES = ("$connect", "$disconnect", "$default", "setName", "sendPublic", "sendPrivate")

PERIOD = Duration.minutes(5)
# API Gateway's request rate for the whole account and Region, shared by every REST, HTTP
# and WebSocket API and by @connections calls (docs/aws-facts.md); adjustable on request.
ACCOUNT_REQUESTS_PER_SECOND = 10_000
MESSAGE_RATE = "MessageRateNearAccountLimit"


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
        "them. Usually broadcasts to a big room at the sendPublic and setName throttles, or "
        "a flood; lower routeThrottling, fanoutPostsPerSecond or maxRoomSize, or ask AWS for "
        "a higher quota.",
        period_minutes=1,
    ),
)


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
        self._function = function
        self._api_dimensions = {"ApiId": api.api_id, "Stage": stage_name}
        self._table_dimensions = {"TableName": table.table_name}
        self._chat_dimensions = {"service": SERVICE, "stage": stage_name}
        self._stage_name = stage_name
        self._message_rate_alarm = message_rate_alarm_per_second
        stack_name = Stack.of(self).stack_name

        self.topic: sns.Topic | None = None
        if alarm_email:
            self.topic = self._alarm_topic(alarm_email, removal_policy)

        metrics = self._alarm_metrics()
        self.alarms: dict[str, cw.Alarm] = {}
        for spec in ALARMS:
            alarm = metrics[spec.key].create_alarm(
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

        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack_name}-{stage_name}",
            default_interval=Duration.hours(3),
            widgets=self._widgets(memory_mb, timeout_seconds),
        )

    # --- metrics ---------------------------------------------------------------------------

    def _lambda(self, name: str, statistic: str, period: Duration = PERIOD) -> cw.Metric:
        return self._function.metric(name, statistic=statistic, period=period)

    def _api(self, name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/ApiGateway",
            metric_name=name,
            dimensions_map=self._api_dimensions,
            statistic=statistic,
            period=period,
        )

    def _table(self, name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/DynamoDB",
            metric_name=name,
            dimensions_map=self._table_dimensions,
            statistic=statistic,
            period=period,
        )

    def _chat(
        self,
        name: str,
        statistic: str = "Sum",
        period: Duration = PERIOD,
        label: str | None = None,
        **dimensions: str,
    ) -> cw.Metric:
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={**self._chat_dimensions, **dimensions},
            statistic=statistic,
            period=period,
            label=label,
        )

    def _per_second(self, metric: cw.Metric, label: str, name: str) -> cw.MathExpression:
        """`metric`'s Sum over each minute, divided by 60: a rate per second. `name` is the
        metric's id in the expression, unique within a graph."""
        minute = Duration.minutes(1)
        return cw.MathExpression(
            expression=f"{name} / PERIOD({name})",
            using_metrics={name: metric.with_(statistic="Sum", period=minute)},
            label=label,
            period=minute,
        )

    def _message_rate(self) -> cw.MathExpression:
        """API Gateway's messages in and out of this stage, a second: what it takes of the
        account's request rate. MessageCount counts messages "from or to the client", so
        every @connections post is in it, as is every frame a client sends
        (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-logging.html)."""
        return self._per_second(
            self._api("MessageCount"), "Messages a second (MessageCount)", "messages"
        )

    def _table_throttles(self, period: Duration = PERIOD) -> cw.MathExpression:
        return cw.MathExpression(
            expression="reads + writes",
            using_metrics={
                "reads": self._table("ReadThrottleEvents", period=period),
                "writes": self._table("WriteThrottleEvents", period=period),
            },
            label="Table throttle events",
            period=period,
        )

    def _alarm_metrics(self) -> Mapping[str, cw.Metric | cw.MathExpression]:
        return {
            "FunctionErrors": self._lambda("Errors", "Sum"),
            "FunctionThrottles": self._lambda("Throttles", "Sum"),
            "FunctionDurationNearTimeout": self._lambda("Duration", "Maximum"),
            "InternalErrors": self._chat(ERROR_FRAMES, code="INTERNAL"),
            "ApiIntegrationErrors": self._api("IntegrationError"),
            "ApiExecutionErrors": self._api("ExecutionError"),
            "ApiClientErrors": self._api("ClientError"),
            "TableThrottles": self._table_throttles(),
            "StaleConnectionSpike": self._chat(STALE_CONNECTIONS_PRUNED),
            "RateLimitedSpike": self._chat(RATE_LIMITED_FRAMES),
            "FanoutShardFailures": self._chat(FANOUT_SHARD_FAILURES),
            MESSAGE_RATE: self._message_rate(),
        }

    def _search(self, metric_name: str, dimension: str) -> cw.MathExpression:
        """Every value of `dimension` (each error code, say), found when the graph loads."""
        keys = ",".join(sorted((*self._chat_dimensions, dimension)))
        return cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{METRICS_NAMESPACE},{keys}}} MetricName="{metric_name}" '
                f'service="{SERVICE}" stage="{self._stage_name}"\', \'Sum\', 300)'
            ),
            using_metrics={},
            label=f"${{PROP('Dim.{dimension}')}}",  # one line per value, named by it
            period=PERIOD,
        )

    # --- dashboard -------------------------------------------------------------------------

    def _widgets(self, memory_mb: int, timeout_seconds: int) -> list[list[cw.IWidget]]:
        minute = Duration.minutes(1)
        hour = Duration.hours(1)
        gb_seconds = cw.MathExpression(
            expression=f"duration / 1000 * {memory_mb / 1024:g}",
            using_metrics={"duration": self._lambda("Duration", "Sum", hour)},
            label=f"Lambda GB-seconds ({memory_mb} MB)",
            period=hour,
        )
        near_timeout = cw.HorizontalAnnotation(
            value=0.8 * timeout_seconds * 1000, label="80% of the timeout"
        )
        return [
            [
                cw.TextWidget(
                    markdown=(
                        f"# Chat, stage `{self._stage_name}`\n"
                        "Thresholds and what to do about each alarm: docs/operations.md "
                        "(Alarms). `Chat` metrics come from the function (EMF, Powertools)."
                    ),
                    width=24,
                    height=2,
                )
            ],
            [
                _graph(
                    "Connections: new per minute (ConnectCount)",
                    [self._api("ConnectCount", period=minute)],
                ),
                _graph(
                    "Messages per minute: API Gateway in+out (MessageCount), posted out (Posts)",
                    [
                        self._api("MessageCount", period=minute),
                        self._chat(POSTS, period=minute),
                    ],
                ),
            ],
            [
                _graph(
                    "Messages a second against the account's "
                    f"{ACCOUNT_REQUESTS_PER_SECOND:,} requests/s: API Gateway in+out "
                    "(MessageCount), posted out (Posts)",
                    [
                        self._message_rate(),
                        self._per_second(self._chat(POSTS), "Posts a second (Posts)", "posts"),
                    ],
                    annotations=[
                        cw.HorizontalAnnotation(
                            value=self._message_rate_alarm,
                            label=f"{MESSAGE_RATE} (messageRateAlarmPerSecond)",
                        ),
                        cw.HorizontalAnnotation(
                            value=ACCOUNT_REQUESTS_PER_SECOND,
                            label="the account's request rate (all APIs in the Region)",
                        ),
                    ],
                    width=24,
                )
            ],
            [
                _graph(
                    "Frames in by route (FramesIn)",
                    [
                        self._chat(FRAMES_IN, period=minute, label=route, route=route)
                        for route in ROUTES
                    ],
                ),
                _graph(
                    "Errors by code (ErrorFrames)",
                    [self._search(ERROR_FRAMES, "code")],
                ),
            ],
            [
                _graph(
                    "Broadcast latency, ms: whole fan-out and one post (p50, p99)",
                    [
                        self._chat(FANOUT_LATENCY, "p50", label="FanoutLatency p50"),
                        self._chat(FANOUT_LATENCY, "p99", label="FanoutLatency p99"),
                        self._chat(POST_LATENCY, "p50", label="PostLatency p50"),
                        self._chat(POST_LATENCY, "p99", label="PostLatency p99"),
                    ],
                ),
                _graph(
                    "Fan-out size: recipients per delivery (avg, max); shards to workers",
                    [
                        self._chat(FANOUT_SIZE, "Average", label="FanoutSize avg"),
                        self._chat(FANOUT_SIZE, "Maximum", label="FanoutSize max"),
                        self._chat(FANOUT_SHARDS, label="FanoutShards"),
                        self._chat(FANOUT_SHARD_FAILURES, label="FanoutShardFailures"),
                    ],
                ),
            ],
            [
                _graph(
                    "Function duration, ms (p50, p99, max)",
                    [
                        self._lambda("Duration", "p50"),
                        self._lambda("Duration", "p99"),
                        self._lambda("Duration", "Maximum"),
                    ],
                    annotations=[near_timeout],
                ),
                _graph(
                    "Function errors and throttles; API Gateway errors",
                    [
                        self._lambda("Errors", "Sum"),
                        self._lambda("Throttles", "Sum"),
                        self._api("IntegrationError"),
                        self._api("ExecutionError"),
                        self._api("ClientError"),
                    ],
                ),
            ],
            [
                _graph(
                    "Stale connections pruned (410), rate-limited frames, failed posts",
                    [
                        self._chat(STALE_CONNECTIONS_PRUNED),
                        self._chat(RATE_LIMITED_FRAMES),
                        self._chat(POST_FAILURES),
                    ],
                ),
                _graph("DynamoDB throttle events", [self._table_throttles()]),
            ],
            [
                _graph(
                    "Cost drivers per hour: API Gateway messages (MessageCount), invocations",
                    [
                        self._api("MessageCount", period=hour),
                        self._lambda("Invocations", "Sum", hour),
                    ],
                ),
                _graph(
                    "Cost drivers per hour: Lambda GB-s, DynamoDB consumed capacity units",
                    [
                        gb_seconds,
                        self._table("ConsumedReadCapacityUnits", period=hour),
                        self._table("ConsumedWriteCapacityUnits", period=hour),
                    ],
                ),
            ],
            [
                cw.AlarmStatusWidget(
                    title="Alarms",
                    alarms=list(self.alarms.values()),
                    width=24,
                    height=4,
                )
            ],
        ]

    # --- notifications ---------------------------------------------------------------------

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


def _graph(
    title: str,
    metrics: Sequence[cw.IMetric],
    annotations: Sequence[cw.HorizontalAnnotation] = (),
    width: int = 12,
) -> cw.GraphWidget:
    return cw.GraphWidget(
        title=title,
        left=list(metrics),
        left_annotations=list(annotations) or None,
        width=width,
        height=6,
    )


def access_log_format(*, include_source_ip: bool) -> str:
    """The stage's JSON access-log line, with or without the client's IP (`sourceIp`)."""
    fields = {
        key: value
        for key, value in ACCESS_LOG_FORMAT.items()
        if include_source_ip or key != "sourceIp"
    }
    return json.dumps(fields)


def drop_source_ip_from_access_logs(stage: apigwv2.WebSocketStage) -> None:
    """Access logs without `sourceIp` (context accessLogSourceIp=false)."""
    resource = stage.node.default_child
    assert isinstance(resource, apigwv2.CfnStage)
    resource.add_property_override(
        "AccessLogSettings.Format", access_log_format(include_source_ip=False)
    )
