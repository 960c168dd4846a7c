"""chat/telemetry.py: the EMF metrics it prints, the log keys it adds, what it never logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chat import telemetry
from chat.notifier import ConnectionsNotifier
from infra import monitoring, powertools
from tests.support.events import LambdaContext

log = logging.getLogger("chat.handler")


@pytest.fixture(autouse=True)
def fresh_metrics():
    """Powertools keeps metrics in class-level state: start and end every test empty."""
    telemetry.metrics.clear_metrics()
    yield
    telemetry.metrics.clear_metrics()


def printed(capsys) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def emf(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "_aws" in line]


def values(lines: list[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    """Every value of metric `name` in the EMF lines whose dimensions include `dimensions`."""
    found: list[float] = []
    for line in emf(lines):
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        if name not in {m["Name"] for m in directive["Metrics"]}:
            continue
        if all(line.get(key) == value for key, value in dimensions.items()):
            found.extend(line[name])
    return found


def event(
    route: str, connection_id: str = "abc=", outcome: str = "ok", body: str = "{}"
) -> dict[str, Any]:
    request = {"routeKey": route, "connectionId": connection_id, "requestId": f"req-{route}"}
    return {"requestContext": request, "body": body, "outcome": outcome}


@telemetry.entry
def handler(evt: dict[str, Any], context: Any) -> dict[str, Any]:
    """A stand-in for handler.lambda_handler: counts the frame and logs it, as it does."""
    outcome = evt["outcome"]
    telemetry.record_request(evt["requestContext"]["routeKey"], outcome)
    log.info("request", extra={"outcome": outcome})
    return {"statusCode": 200}


def test_every_emf_line_is_in_the_chat_namespace_with_service_and_stage(capsys, monkeypatch):
    monkeypatch.setenv("STAGE_NAME", "production")
    handler(event("sendPublic"), LambdaContext())
    lines = emf(printed(capsys))
    assert lines
    for line in lines:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Chat"
        (dimensions,) = directive["Dimensions"]
        assert line["service"] == "chat"
        if "ColdStart" not in line:  # Powertools' own, by function
            assert {"service", "stage"} <= set(dimensions)
            assert line["stage"] == "production"


def test_frames_are_counted_by_route_and_errors_by_code(capsys):
    handler(event("sendPublic"), LambdaContext())
    handler(event("setName", outcome="NAME_TAKEN"), LambdaContext())
    handler(event("sendPublic", outcome="RATE_LIMITED"), LambdaContext())
    handler(event("$connect", outcome="refused"), LambdaContext())
    lines = printed(capsys)
    assert values(lines, "FramesIn", route="sendPublic") == [1.0, 1.0]
    assert values(lines, "FramesIn", route="setName") == [1.0]
    assert values(lines, "FramesIn", route="$connect") == [1.0]
    assert values(lines, "ErrorFrames", code="NAME_TAKEN") == [1.0]
    assert values(lines, "ErrorFrames", code="RATE_LIMITED") == [1.0]
    assert values(lines, "ErrorFrames", code="REFUSED") == [1.0]
    assert sorted(values(lines, "RateLimitedFrames")) == [0.0, 0.0, 0.0, 1.0]


def test_dimension_values_stay_bounded(capsys):
    handler(event("someRouteNobodyConfigured"), LambdaContext())
    handler(event("sendPublic", outcome="not a code"), LambdaContext())
    lines = printed(capsys)
    assert values(lines, "FramesIn", route="other") == [1.0]
    assert values(lines, "ErrorFrames", code="other") == [1.0]


class FakeConnections:
    """The @connections client: `gone` ids answer 410, `broken` ids another error."""

    def __init__(self, gone: Collection[str] = (), broken: Collection[str] = ()) -> None:
        self.gone, self.broken = set(gone), set(broken)
        self.posted: list[str] = []

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:  # noqa: N803
        if ConnectionId in self.gone:
            raise ClientError({"Error": {"Code": "GoneException"}}, "PostToConnection")
        if ConnectionId in self.broken:
            raise ClientError({"Error": {"Code": "ForbiddenException"}}, "PostToConnection")
        self.posted.append(ConnectionId)

    def get_connection(self, ConnectionId: str) -> dict[str, Any]:  # noqa: N803
        if ConnectionId in self.gone:
            raise ClientError(
                {"Error": {"Code": "GoneException"}, "ResponseMetadata": {"HTTPStatusCode": 410}},
                "GetConnection",
            )
        return {}


def test_a_delivery_reports_its_size_posts_410s_failures_and_latencies(capsys):
    client = FakeConnections(gone={"gone="}, broken={"broken="})
    notifier = ConnectionsNotifier(client, concurrency=4)

    @telemetry.entry
    def broadcast(evt: dict[str, Any], context: Any) -> dict[str, Any]:
        notifier.send({cid: [{"n": 1}, {"n": 2}] for cid in ("a=", "b=", "gone=", "broken=")})
        return {"statusCode": 200}

    broadcast(event("sendPublic"), LambdaContext())
    lines = printed(capsys)
    assert values(lines, "FanoutSize") == [4.0]
    assert values(lines, "Posts") == [4.0]  # two frames each to a= and b=
    assert values(lines, "PostFailures") == [1.0]
    assert values(lines, "StaleConnectionsPruned") == [1.0]
    assert len(values(lines, "PostLatency")) == 6  # 4 posted, 1 refused with 410, 1 failed
    (fanout_ms,) = values(lines, "FanoutLatency")
    assert fanout_ms >= max(values(lines, "PostLatency"))


def test_a_name_holder_found_gone_counts_as_a_stale_connection(capsys):
    notifier = ConnectionsNotifier(FakeConnections(gone={"dead="}), concurrency=1)
    assert notifier.is_gone("dead=") is True
    assert notifier.is_gone("alive=") is False
    telemetry.metrics.flush_metrics()
    assert values(printed(capsys), "StaleConnectionsPruned") == [1.0]


def test_large_deliveries_keep_100_latency_quantiles_with_min_and_max():
    few = [3.0, 1.0, 2.0]
    assert telemetry.latency_samples(few) == [1.0, 2.0, 3.0]
    many = [float(v) for v in range(1000)]
    sample = telemetry.latency_samples(many)
    assert len(sample) == telemetry.MAX_LATENCY_SAMPLES
    assert sample[0] == 0.0 and sample[-1] == 999.0
    assert sample == sorted(sample)


def test_log_lines_carry_the_invocation_route_and_connection_but_never_the_body(capsys):
    secret = "top secret message"
    body = json.dumps({"action": "sendPublic", "message": secret})
    handler(event("sendPublic", connection_id="conn-1=", body=body), LambdaContext())
    lines = printed(capsys)
    (request,) = [line for line in lines if line.get("message") == "request"]
    assert request["level"] == "INFO"
    assert request["service"] == "chat"
    assert request["route"] == "sendPublic"
    assert request["connectionId"] == "conn-1="
    assert request["requestId"] == "req-sendPublic"
    assert request["function_request_id"] == LambdaContext.aws_request_id
    assert "cold_start" in request
    assert secret not in json.dumps(lines)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_log_keys_do_not_leak_from_one_invocation_into_the_next(capsys):
    handler(event("sendPublic", connection_id="first="), LambdaContext())

    @telemetry.entry
    def bare(evt: dict[str, Any], context: Any) -> dict[str, Any]:
        log.info("request")
        return {"statusCode": 200}

    bare({"requestContext": {}}, LambdaContext())
    requests = [line for line in printed(capsys) if line.get("message") == "request"]
    assert requests[-1]["connectionId"] == ""


def test_a_handler_called_without_a_context_still_works(capsys):
    assert handler(event("$disconnect"), None) == {"statusCode": 200}
    assert values(printed(capsys), "FramesIn", route="$disconnect") == [1.0]


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, False), ("true", False), ("TRUE", False), ("false", True), ("0", True)],
)
def test_tracing_follows_the_stack_setting(monkeypatch, value, enabled):
    if value is None:
        monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    else:
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", value)
    assert telemetry.tracing_enabled() is enabled


def test_with_tracing_on_the_handler_runs_inside_the_tracer(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    assert handler(event("sendPublic"), LambdaContext()) == {"statusCode": 200}
    assert type(telemetry._tracer()).__name__ == "Tracer"
    assert values(printed(capsys), "FramesIn", route="sendPublic") == [1.0]


def test_metric_names_and_namespace_agree_with_the_alarms_and_the_stack():
    assert telemetry.METRIC_NAMES == monitoring.METRIC_NAMES
    assert telemetry.ROUTES == monitoring.ROUTES
    assert (telemetry.NAMESPACE, telemetry.SERVICE) == (
        powertools.METRICS_NAMESPACE,
        powertools.SERVICE,
    )
