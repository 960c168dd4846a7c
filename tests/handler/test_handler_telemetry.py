"""The handler's metrics end to end: frames in, fan-out, 410s, refusals, as EMF on stdout."""

from __future__ import annotations

import json
from typing import Any

import pytest

import handler
from chat import telemetry
from tests.handler.test_handler import api, connect, join, send  # noqa: F401 - api: fixture


@pytest.fixture(autouse=True)
def fresh_metrics():
    telemetry.metrics.clear_metrics()
    yield
    telemetry.metrics.clear_metrics()


def metric_values(out: str, name: str, **dimensions: str) -> list[float]:
    found: list[float] = []
    for line in out.splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if (
            "_aws" in entry
            and name in entry
            and all(entry.get(k) == v for k, v in dimensions.items())
        ):
            found.extend(entry[name])
    return found


def test_a_broadcast_counts_its_frame_its_recipients_and_its_posts(api, capsys):  # noqa: F811
    alice, _, _ = join(api, "Alice", "Bob", "Carol")
    capsys.readouterr()
    send(alice, {"action": "sendPublic", "message": "hello"})
    out = capsys.readouterr().out
    assert metric_values(out, "FramesIn", route="sendPublic") == [1.0]
    assert metric_values(out, "RateLimitedFrames") == [0.0]
    # The others, then the sender's own copy: deliveries that reach all three members.
    assert sum(metric_values(out, "FanoutSize")) == 3
    assert sum(metric_values(out, "Posts")) == 3
    assert len(metric_values(out, "PostLatency")) == 3
    assert metric_values(out, "FanoutLatency")
    assert "hello" not in out  # neither in the logs nor in the metrics


def test_a_gone_recipient_is_counted_as_a_stale_connection(api, capsys):  # noqa: F811
    alice, bob, _ = join(api, "Alice", "Bob", "Carol")
    api.gone.add(bob)
    capsys.readouterr()
    send(alice, {"action": "sendPublic", "message": "anyone?"})
    assert sum(metric_values(capsys.readouterr().out, "StaleConnectionsPruned")) == 1


def test_refusals_are_counted_by_code(api, capsys, monkeypatch):  # noqa: F811
    # A bucket that refills at 0.01 frames/s: 15 frames beyond a join are refused some,
    # however slowly this machine runs them.
    monkeypatch.setenv("MESSAGE_RATE_PER_SECOND", "0.01")
    handler.reset()
    (alice,) = join(api, "Alice")
    capsys.readouterr()
    send(alice, "not json")
    for n in range(15):
        send(alice, {"action": "sendPublic", "message": f"m{n}"})
    out = capsys.readouterr().out
    assert metric_values(out, "ErrorFrames", code="INVALID_JSON") == [1.0]
    refused = metric_values(out, "ErrorFrames", code="RATE_LIMITED")
    assert refused and sum(metric_values(out, "RateLimitedFrames")) == len(refused)


def test_every_stdout_line_is_json_and_log_lines_name_route_and_connection(api, capsys):  # noqa: F811
    connect("c=")
    lines: list[dict[str, Any]] = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line
    ]
    logs = [line for line in lines if "_aws" not in line]
    (request,) = [line for line in logs if line.get("message") == "request"]
    assert (request["route"], request["connectionId"], request["outcome"]) == (
        "$connect",
        "c=",
        "ok",
    )
    assert request["function_request_id"] and "cold_start" in request
