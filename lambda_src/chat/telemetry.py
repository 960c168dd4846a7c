"""The chat's metrics (CloudWatch EMF), request-scoped log keys and optional X-Ray tracing.

Powertools for AWS Lambda (Python) comes from AWS's public layer in Lambda and from
requirements-dev.txt locally. Only the edges call this module: `entry` wraps the Lambda
handler, `record_request` counts each frame by route and outcome (handler.py), and
`record_delivery` / `record_stale` describe each fan-out (notifier.py). The service stays
free of Powertools.

Every metric is in the `Chat` namespace with the dimensions `service` and `stage`
(`FramesIn` adds `route`, `ErrorFrames` adds `code`); infra/monitoring.py alarms on them
and draws them on the dashboard; both read the names from chat/settings.json.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from chat import logs
from chat.settings import METRICS

# Namespace, service and metric names: settings.json, which infra/monitoring.py reads too.
NAMESPACE: str = METRICS["namespace"]
SERVICE: str = METRICS["service"]
_NAMES: dict[str, str] = {key: m["name"] for key, m in METRICS["names"].items()}
FRAMES_IN = _NAMES["FRAMES_IN"]  # Count per route: every event the function handles
ERROR_FRAMES = _NAMES["ERROR_FRAMES"]  # Count per code: error frames sent, refused handshakes
RATE_LIMITED_FRAMES = _NAMES["RATE_LIMITED_FRAMES"]  # Count: frames refused with RATE_LIMITED
FANOUT_SIZE = _NAMES["FANOUT_SIZE"]  # Count: recipients of one delivery
FANOUT_LATENCY = _NAMES["FANOUT_LATENCY"]  # Milliseconds: one whole delivery
POSTS = _NAMES["POSTS"]  # Count: frames posted to @connections (API Gateway messages out)
POST_FAILURES = _NAMES["POST_FAILURES"]  # Count: posts that failed other than with 410
POST_LATENCY = _NAMES["POST_LATENCY"]  # Milliseconds: one post_to_connection call
STALE_CONNECTIONS_PRUNED = _NAMES["STALE_CONNECTIONS_PRUNED"]  # Count: connections gone (410)
FANOUT_SHARDS = _NAMES["FANOUT_SHARDS"]  # Count: shards handed to fan-out workers
FANOUT_SHARD_FAILURES = _NAMES["FANOUT_SHARD_FAILURES"]  # Count: shards whose worker failed
REVIEW_HOOK_FAILURES = _NAMES["REVIEW_HOOK_FAILURES"]  # Count: reviews the fallback decided
EVENTS_FAILED = _NAMES["EVENTS_FAILED"]  # Count: events not published to the bus
SERVER_API_REQUESTS = _NAMES["SERVER_API_REQUESTS"]  # Count per status class: server API
METRIC_NAMES = tuple(_NAMES.values())

# The dimension values are bounded (each distinct value is a billed custom metric): the
# stack's routes, as settings.json lists them for the dashboard too.
ROUTES: tuple[str, ...] = tuple(METRICS["routes"])
OTHER = "other"
REFUSED = "REFUSED"  # a $connect the function answered 403 (origin or sign-in)
RATE_LIMITED = "RATE_LIMITED"
# Up to this many PostLatency values per delivery: every post, or evenly spaced quantiles.
MAX_LATENCY_SAMPLES = 100

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _stage() -> str:
    return _env("STAGE_NAME", "local")


def tracing_enabled() -> bool:
    """X-Ray tracing only when the stack turned it on (POWERTOOLS_TRACE_DISABLED=false)."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in (
        "false",
        "0",
        "no",
    )


metrics = Metrics(
    namespace=_env("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
    service=_env("POWERTOOLS_SERVICE_NAME", SERVICE),
)


def _add(name: str, unit: MetricUnit, value: float) -> None:
    """A value for the next EMF flush (dimensions: service, and stage added here).

    `stage` is added with the first value after each flush, not as a Powertools default
    dimension, which warns on every flush that it is being overwritten.
    """
    if "stage" not in metrics.dimension_set:
        metrics.add_dimension(name="stage", value=_stage())
    metrics.add_metric(name=name, unit=unit, value=value)


@functools.cache
def _tracer() -> Any:
    """Powertools' Tracer, imported only when tracing is on (it loads the X-Ray SDK)."""
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - kept off the cold start

    return Tracer(service=_env("POWERTOOLS_SERVICE_NAME", SERVICE))


class _NoContext:
    """Stands in for a missing Lambda context (a handler called directly)."""

    function_name = "local"
    function_version = "$LATEST"
    memory_limit_in_mb = 0
    invoked_function_arn = ""
    aws_request_id = ""


def entry(handler: Handler) -> Handler:
    """Wrap the Lambda handler: per-invocation log keys, EMF flush, optional X-Ray segment.

    The log keys are the invocation's (`function_request_id`, `cold_start`, ...) plus the
    event's `route`, `connectionId` and `requestId`; never the body.
    """

    @functools.wraps(handler)
    def wrapper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger = logs.configure(_env("LOG_LEVEL", "INFO"))
        request = event.get("requestContext") or {}
        route = str(request.get("routeKey", ""))

        def with_log_keys(event: dict[str, Any], context: Any) -> dict[str, Any]:
            logger.append_keys(
                route=route,
                connectionId=str(request.get("connectionId", "")),
                requestId=request.get("requestId"),
            )
            if tracing_enabled():  # inside the handler's subsegment (the facade is read-only)
                _tracer().put_annotation("route", route)
            return handler(event, context)

        invoke: Handler = logger.inject_lambda_context(with_log_keys, clear_state=True)
        if tracing_enabled():
            invoke = _tracer().capture_lambda_handler(invoke, capture_response=False)
        flushed: Handler = metrics.log_metrics(invoke, capture_cold_start_metric=True)
        return flushed(event, context if context is not None else _NoContext())

    return wrapper


def record_request(route: str, outcome: str) -> None:
    """One event handled: `FramesIn` by route, plus `ErrorFrames` by code unless it went well.

    `outcome` is "ok", "refused" (a $connect answered 403) or the error code sent back.
    """
    _count(FRAMES_IN, "route", route if route in ROUTES else OTHER)
    _add(RATE_LIMITED_FRAMES, MetricUnit.Count, int(outcome == RATE_LIMITED))
    if outcome == "refused":
        _count(ERROR_FRAMES, "code", REFUSED)
    elif outcome != "ok":
        code = outcome if outcome.isupper() and len(outcome) <= 32 else OTHER
        _count(ERROR_FRAMES, "code", code)


def record_server_api(status: int) -> None:
    """One server API request answered (lambda_src/admin.py): `ServerApiRequests` by the
    status's class, `2xx`, `4xx` or `5xx`."""
    _count(SERVER_API_REQUESTS, "status", f"{status // 100}xx")


def record_delivery(
    *,
    recipients: int,
    posts: int,
    failures: int,
    gone: int,
    post_latencies_ms: Sequence[float],
    elapsed_ms: float,
) -> None:
    """One fan-out (notifier.send): its size, what it posted, how long it took."""
    if recipients <= 0:
        return
    _add(FANOUT_SIZE, MetricUnit.Count, recipients)
    _add(FANOUT_LATENCY, MetricUnit.Milliseconds, round(elapsed_ms, 2))
    _add(POSTS, MetricUnit.Count, posts)
    _add(POST_FAILURES, MetricUnit.Count, failures)
    _add(STALE_CONNECTIONS_PRUNED, MetricUnit.Count, gone)
    for latency in latency_samples(post_latencies_ms):
        _add(POST_LATENCY, MetricUnit.Milliseconds, latency)


def record_shards(*, shards: int, taken_back: int, failed: int) -> None:
    """One sharded delivery (chat/sharding.py): shards given to workers, shards this
    invocation posted itself because no worker could run (logged, not counted), and shards
    whose worker failed. The posts, and each shard's FanoutLatency, are recorded by whoever
    posted them (`record_delivery`, in this invocation or the worker's)."""
    _add(FANOUT_SHARDS, MetricUnit.Count, shards - taken_back)
    _add(FANOUT_SHARD_FAILURES, MetricUnit.Count, failed)


def record_review_failure(reason: str = "") -> None:
    """One review the hook did not decide (timeout, error, invalid answer): the fallback
    did (chat/review.py; the reason is in the log line, not a dimension)."""
    _add(REVIEW_HOOK_FAILURES, MetricUnit.Count, 1)


def record_events_failed(count: int) -> None:
    """Events that could not be published to the bus (chat/events_out.py)."""
    if count > 0:
        _add(EVENTS_FAILED, MetricUnit.Count, count)


def record_stale(count: int = 1) -> None:
    """Connections found gone outside a fan-out (a name held by a dead socket)."""
    if count > 0:
        _add(STALE_CONNECTIONS_PRUNED, MetricUnit.Count, count)


def latency_samples(values: Sequence[float]) -> list[float]:
    """All the values, or MAX_LATENCY_SAMPLES evenly spaced quantiles of them (min and max kept)."""
    rounded = sorted(round(v, 2) for v in values)
    if len(rounded) <= MAX_LATENCY_SAMPLES:
        return rounded
    last = len(rounded) - 1
    step = last / (MAX_LATENCY_SAMPLES - 1)
    return [rounded[round(i * step)] for i in range(MAX_LATENCY_SAMPLES)]


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return (time.perf_counter() - started) * 1000


def _count(name: str, dimension: str, value: str) -> None:
    """A Count of 1 with one extra dimension, in its own EMF line."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": str(metrics.service), "stage": _stage()},
    ) as metric:
        metric.add_dimension(name=dimension, value=value)
