"""The CloudWatch metrics the alarms (infra/monitoring.py) and the dashboard
(infra/dashboard.py) read: Lambda's, the WebSocket stage's, the table's and the chat's own.

The chat's EMF metrics (namespace `Chat`, dimensions `service` and `stage`) are written by
lambda_src/chat/telemetry.py through Powertools; their names come from
lambda_src/chat/settings.json, which both sides read.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_

from infra.function_settings import METRIC_NAMES as METRIC_NAME
from infra.function_settings import METRIC_ROUTES
from infra.powertools import METRICS_NAMESPACE, SERVICE

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
REVIEW_HOOK_FAILURES = METRIC_NAME["REVIEW_HOOK_FAILURES"]
EVENTS_FAILED = METRIC_NAME["EVENTS_FAILED"]
METRIC_NAMES = tuple(METRIC_NAME.values())
ROUTES = METRIC_ROUTES  # the routes FramesIn counts, from settings.json as the function reads

PERIOD = Duration.minutes(5)
# API Gateway's request rate for the whole account and Region, shared by every REST, HTTP
# and WebSocket API and by @connections calls (docs/aws-facts.md); adjustable on request.
ACCOUNT_REQUESTS_PER_SECOND = 10_000
# The alarm on this stage's share of it (infra/monitoring.py), named on the dashboard too.
MESSAGE_RATE = "MessageRateNearAccountLimit"


class ChatMetrics:
    """Metric factories for one stage: the chat function, the API's stage and the table."""

    def __init__(
        self, *, function: lambda_.IFunction, api_id: str, stage_name: str, table_name: str
    ) -> None:
        self._function = function
        self._api_dimensions = {"ApiId": api_id, "Stage": stage_name}
        self._table_dimensions = {"TableName": table_name}
        self._chat_dimensions = {"service": SERVICE, "stage": stage_name}
        self.stage_name = stage_name

    def lambda_(self, name: str, statistic: str, period: Duration = PERIOD) -> cw.Metric:
        return self._function.metric(name, statistic=statistic, period=period)

    def api(self, name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/ApiGateway",
            metric_name=name,
            dimensions_map=self._api_dimensions,
            statistic=statistic,
            period=period,
        )

    def table(self, name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/DynamoDB",
            metric_name=name,
            dimensions_map=self._table_dimensions,
            statistic=statistic,
            period=period,
        )

    def chat(
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

    def per_second(self, metric: cw.Metric, label: str, name: str) -> cw.MathExpression:
        """`metric`'s Sum over each minute, divided by 60: a rate per second. `name` is the
        metric's id in the expression, unique within a graph."""
        minute = Duration.minutes(1)
        return cw.MathExpression(
            expression=f"{name} / PERIOD({name})",
            using_metrics={name: metric.with_(statistic="Sum", period=minute)},
            label=label,
            period=minute,
        )

    def message_rate(self) -> cw.MathExpression:
        """API Gateway's messages in and out of this stage, a second: what it takes of the
        account's request rate. MessageCount counts messages "from or to the client", so
        every @connections post is in it, as is every frame a client sends
        (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-logging.html)."""
        return self.per_second(
            self.api("MessageCount"), "Messages a second (MessageCount)", "messages"
        )

    def table_throttles(self, period: Duration = PERIOD) -> cw.MathExpression:
        return cw.MathExpression(
            expression="reads + writes",
            using_metrics={
                "reads": self.table("ReadThrottleEvents", period=period),
                "writes": self.table("WriteThrottleEvents", period=period),
            },
            label="Table throttle events",
            period=period,
        )

    def search(self, metric_name: str, dimension: str) -> cw.MathExpression:
        """Every value of `dimension` (each error code, say), found when the graph loads."""
        keys = ",".join(sorted((*self._chat_dimensions, dimension)))
        return cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{METRICS_NAMESPACE},{keys}}} MetricName="{metric_name}" '
                f'service="{SERVICE}" stage="{self.stage_name}"\', \'Sum\', 300)'
            ),
            using_metrics={},
            label=f"${{PROP('Dim.{dimension}')}}",  # one line per value, named by it
            period=PERIOD,
        )
