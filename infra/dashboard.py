"""The chat's CloudWatch dashboard: its widgets, row by row, from the metrics in
infra/metrics.py and the alarms in infra/monitoring.py (which creates the dashboard)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw

from infra.metrics import (
    ACCOUNT_REQUESTS_PER_SECOND,
    ERROR_FRAMES,
    FANOUT_LATENCY,
    FANOUT_SHARD_FAILURES,
    FANOUT_SHARDS,
    FANOUT_SIZE,
    FRAMES_IN,
    MESSAGE_RATE,
    POST_FAILURES,
    POST_LATENCY,
    POSTS,
    RATE_LIMITED_FRAMES,
    ROUTES,
    STALE_CONNECTIONS_PRUNED,
    ChatMetrics,
)


def dashboard_widgets(
    metrics: ChatMetrics,
    *,
    memory_mb: int,
    timeout_seconds: int,
    message_rate_alarm_per_second: float,
    alarms: Sequence[cw.IAlarm],
) -> list[list[cw.IWidget]]:
    """The dashboard's rows: traffic, the account's request rate, frames and errors,
    broadcasts, the function, throttles and prunes, cost drivers, then the alarms."""
    minute = Duration.minutes(1)
    hour = Duration.hours(1)
    gb_seconds = cw.MathExpression(
        expression=f"duration / 1000 * {memory_mb / 1024:g}",
        using_metrics={"duration": metrics.lambda_("Duration", "Sum", hour)},
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
                    f"# Chat, stage `{metrics.stage_name}`\n"
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
                [metrics.api("ConnectCount", period=minute)],
            ),
            _graph(
                "Messages per minute: API Gateway in+out (MessageCount), posted out (Posts)",
                [
                    metrics.api("MessageCount", period=minute),
                    metrics.chat(POSTS, period=minute),
                ],
            ),
        ],
        [
            _graph(
                "Messages a second against the account's "
                f"{ACCOUNT_REQUESTS_PER_SECOND:,} requests/s: API Gateway in+out "
                "(MessageCount), posted out (Posts)",
                [
                    metrics.message_rate(),
                    metrics.per_second(metrics.chat(POSTS), "Posts a second (Posts)", "posts"),
                ],
                annotations=[
                    cw.HorizontalAnnotation(
                        value=message_rate_alarm_per_second,
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
                    metrics.chat(FRAMES_IN, period=minute, label=route, route=route)
                    for route in ROUTES
                ],
            ),
            _graph(
                "Errors by code (ErrorFrames)",
                [metrics.search(ERROR_FRAMES, "code")],
            ),
        ],
        [
            _graph(
                "Broadcast latency, ms: whole fan-out and one post (p50, p99)",
                [
                    metrics.chat(FANOUT_LATENCY, "p50", label="FanoutLatency p50"),
                    metrics.chat(FANOUT_LATENCY, "p99", label="FanoutLatency p99"),
                    metrics.chat(POST_LATENCY, "p50", label="PostLatency p50"),
                    metrics.chat(POST_LATENCY, "p99", label="PostLatency p99"),
                ],
            ),
            _graph(
                "Fan-out size: recipients per delivery (avg, max); shards to workers",
                [
                    metrics.chat(FANOUT_SIZE, "Average", label="FanoutSize avg"),
                    metrics.chat(FANOUT_SIZE, "Maximum", label="FanoutSize max"),
                    metrics.chat(FANOUT_SHARDS, label="FanoutShards"),
                    metrics.chat(FANOUT_SHARD_FAILURES, label="FanoutShardFailures"),
                ],
            ),
        ],
        [
            _graph(
                "Function duration, ms (p50, p99, max)",
                [
                    metrics.lambda_("Duration", "p50"),
                    metrics.lambda_("Duration", "p99"),
                    metrics.lambda_("Duration", "Maximum"),
                ],
                annotations=[near_timeout],
            ),
            _graph(
                "Function errors and throttles; API Gateway errors",
                [
                    metrics.lambda_("Errors", "Sum"),
                    metrics.lambda_("Throttles", "Sum"),
                    metrics.api("IntegrationError"),
                    metrics.api("ExecutionError"),
                    metrics.api("ClientError"),
                ],
            ),
        ],
        [
            _graph(
                "Stale connections pruned (410), rate-limited frames, failed posts",
                [
                    metrics.chat(STALE_CONNECTIONS_PRUNED),
                    metrics.chat(RATE_LIMITED_FRAMES),
                    metrics.chat(POST_FAILURES),
                ],
            ),
            _graph("DynamoDB throttle events", [metrics.table_throttles()]),
        ],
        [
            _graph(
                "Cost drivers per hour: API Gateway messages (MessageCount), invocations",
                [
                    metrics.api("MessageCount", period=hour),
                    metrics.lambda_("Invocations", "Sum", hour),
                ],
            ),
            _graph(
                "Cost drivers per hour: Lambda GB-s, DynamoDB consumed capacity units",
                [
                    gb_seconds,
                    metrics.table("ConsumedReadCapacityUnits", period=hour),
                    metrics.table("ConsumedWriteCapacityUnits", period=hour),
                ],
            ),
        ],
        [
            cw.AlarmStatusWidget(
                title="Alarms",
                alarms=list(alarms),
                width=24,
                height=4,
            )
        ],
    ]


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
