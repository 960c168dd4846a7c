"""Conformance (docs/sandbox.md): messages, route selection, route responses and frame limits
(items 11-13, 15, 17-21), plus the Lambda execution model, against the echo fixture stack."""

from __future__ import annotations

import json
import re
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.sandbox import (
    RawWebSocket,
    Sandbox,
    connection_id_of,
    new_tag,
    recv_text,
)

pytestmark = pytest.mark.sandbox

ID = r"[A-Za-z0-9_-]{15}="
TEXT, BINARY, CONTINUATION = 0x1, 0x2, 0x0


def test_matching_route_receives_message_event(echo_sandbox: Sandbox) -> None:
    # GIVEN a "join" route (two-way, echoes its event)
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN {"action":"join"} is sent
        ws.send('{"action":"join"}')
        event = json.loads(ws.recv(timeout=5))
    # THEN the join Lambda got a MESSAGE event with the raw body and no headers
    context = event["requestContext"]
    assert context["routeKey"] == "join"
    assert context["eventType"] == "MESSAGE"
    assert re.fullmatch(ID, context["messageId"])
    assert context["connectionId"] == cid
    assert event["body"] == '{"action":"join"}'
    assert event["isBase64Encoded"] is False
    assert "headers" not in event
    assert "multiValueHeaders" not in event


@pytest.mark.parametrize(
    "body",
    ['{"action":"nope"}', "hello", "{}", "[1]", '{"action":null}', '{"action":"Join"}'],
)
def test_unmatched_messages_go_to_default(echo_sandbox: Sandbox, body: str) -> None:
    # GIVEN a $default route that echoes its event
    with echo_sandbox.connect() as ws:
        # WHEN a message matches no route key exactly
        ws.send(body)
        event = json.loads(ws.recv(timeout=5))
    # THEN $default handles it, and says so in routeKey
    assert event["requestContext"]["routeKey"] == "$default"
    assert event["body"] == body


def test_numeric_action_is_stringified_to_match_route(echo_sandbox: Sandbox) -> None:
    # GIVEN a route whose key is "123"
    with echo_sandbox.connect() as ws:
        # WHEN the action is the number 123
        ws.send('{"action":123}')
        event = json.loads(ws.recv(timeout=5))
    # THEN the route "123" handles it
    assert event["requestContext"]["routeKey"] == "123"


def test_route_exception_sends_internal_server_error_frame(echo_sandbox: Sandbox) -> None:
    # GIVEN a route whose Lambda raises
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it is called
        ws.send('{"action":"raise"}')
        frame = recv_text(ws)
        # THEN the exact gateway error frame arrives
        assert re.fullmatch(
            rf'\{{"message": "Internal server error", "connectionId":"{re.escape(cid)}", '
            rf'"requestId":"{ID}"\}}',
            frame,
        )
        # AND the socket stays open
        assert connection_id_of(ws) == cid


def test_route_lambda_timeout_sends_internal_server_error_frame(echo_sandbox: Sandbox) -> None:
    # GIVEN a route whose Lambda runs past its 2 s timeout (the integration allows 29 s)
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        started = time.monotonic()
        # WHEN it is called
        ws.send('{"action":"sleep","seconds":3}')
        frame = json.loads(ws.recv(timeout=10))
        # THEN the function error is reported like any other Lambda error, after ~2 s
        assert frame["message"] == "Internal server error"
        assert 1.8 < time.monotonic() - started < 5.0
        # AND the killed environment is replaced: the socket and the function still work
        assert connection_id_of(ws) == cid


def test_one_way_route_response_is_not_sent(echo_sandbox: Sandbox) -> None:
    # GIVEN a one-way route returning {"statusCode":200,"body":"x"}
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it is called
        ws.send('{"action":"oneway"}')
        echo_sandbox.wait_for_record(cid, "MESSAGE")
        # THEN the client receives nothing
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.0)


def test_two_way_route_sends_body_as_text_frame(echo_sandbox: Sandbox) -> None:
    # GIVEN a two-way route (RouteResponse $default) returning body "x"
    with echo_sandbox.connect() as ws:
        # WHEN it is called
        ws.send('{"action":"status","status":200,"body":"x"}')
        # THEN the client receives exactly the text frame "x"
        assert ws.recv(timeout=5) == "x"


def test_route_returning_500_keeps_socket_open(echo_sandbox: Sandbox) -> None:
    # GIVEN a two-way route returning statusCode 500 with a body
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it is called
        ws.send('{"action":"status","status":500,"body":"oops"}')
        # THEN its body is forwarded and the socket stays open
        assert ws.recv(timeout=5) == "oops"
        assert connection_id_of(ws) == cid


def test_binary_frame_closes_with_1003_and_runs_no_lambda(echo_sandbox: Sandbox) -> None:
    # GIVEN an open connection
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        before = len(echo_sandbox.events(cid, "MESSAGE"))
        # WHEN the client sends a binary frame
        ws.send(b"\x00\x01binary")
        # THEN the gateway closes with 1003
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
    # AND no route Lambda ran for it ($disconnect does run)
    disconnect = echo_sandbox.wait_for_event(cid, "DISCONNECT")
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1003
    assert len(echo_sandbox.events(cid, "MESSAGE")) == before


@pytest.mark.parametrize(
    ("frames", "closes"),
    [
        ([32 * 1024 + 1], True),
        ([32 * 1024], False),
        ([30_000] * 5, True),
        ([32 * 1024] * 4, False),
    ],
    ids=["frame-over-32k", "frame-of-32k", "message-over-128k", "message-of-128k"],
)
def test_frame_over_32k_or_message_over_128k_closes_with_1009(
    echo_sandbox: Sandbox, frames: list[int], closes: bool
) -> None:
    # GIVEN an open connection
    tag = new_tag()
    raw = RawWebSocket(echo_sandbox.port, f"/dev?tag={tag}")
    try:
        assert raw.status == 101
        # WHEN the client sends a message in frames of these sizes
        for index, size in enumerate(frames):
            opcode = TEXT if index == 0 else CONTINUATION
            raw.send_frame(opcode, b"x" * size, fin=index == len(frames) - 1)
        if closes:
            # THEN a frame over 32 KB or a message over 128 KB closes the socket with 1009
            assert raw.recv_close_code() == 1009
        else:
            # THEN anything up to the limits is delivered ($default echoes the event)
            payload = b""
            while True:
                fin, _, chunk = raw.recv_frame()
                payload += chunk
                if fin:
                    break
            assert len(json.loads(payload)["body"]) == sum(frames)
    finally:
        raw.close()
    if closes:
        cid = echo_sandbox.tagged_connection_id(tag)
        disconnect = echo_sandbox.wait_for_event(cid, "DISCONNECT")
        assert disconnect["requestContext"]["disconnectStatusCode"] == 1009


def test_concurrent_invocations_run_in_separate_environments(echo_sandbox: Sandbox) -> None:
    # GIVEN two connected clients and a function that sleeps and reports its process
    with echo_sandbox.connect() as first, echo_sandbox.connect() as second:
        # WHEN both call it at the same time (the first call still sleeps when the second
        # arrives, however slowly the clients connected)
        for ws in (first, second):
            ws.send('{"action":"context","sleep":1.0}')
        pids = [int(json.loads(ws.recv(timeout=15))["pid"]) for ws in (first, second)]
    # THEN each invocation had its own execution environment (no shared module state)
    assert pids[0] != pids[1]


def test_handler_gets_lambda_context_and_environment(echo_sandbox: Sandbox) -> None:
    # GIVEN the second function of the stack (context_handler, 256 MB, 5 s)
    with echo_sandbox.connect() as ws:
        # WHEN it is invoked
        ws.send('{"action":"context"}')
        report = json.loads(ws.recv(timeout=10))
    # THEN its context object looks like Lambda's
    assert re.fullmatch(r"[0-9a-f-]{36}", report["aws_request_id"])
    assert report["function_name"] == "OtherFunction"
    assert report["function_version"] == "$LATEST"
    assert report["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:OtherFunction"
    )
    assert report["memory_limit_in_mb"] == "256"
    assert report["log_group_name"] == "/aws/lambda/OtherFunction"
    assert "[$LATEST]" in report["log_stream_name"]
    assert 4000 < report["remaining_ms"] <= 5000
    # AND its environment is Lambda's, with local endpoints and fake credentials
    env = report["env"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "OtherFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == echo_sandbox.banner_value("DynamoDB")
    assert env["TABLE_NAME"] == "EventsTable"
    assert env["CALLBACK_URL"] == echo_sandbox.callback_url
    assert env["CALLBACK_URL"].startswith("https://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == echo_sandbox.api_url
    assert env["AWS_CA_BUNDLE"] == echo_sandbox.ca_bundle
    assert env["HOME"] is None
    assert report["cwd"] == env["LAMBDA_TASK_ROOT"]


def test_invocations_are_logged_with_route_connection_status_and_duration(
    echo_sandbox: Sandbox,
) -> None:
    # GIVEN a connection that sends one message
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
    echo_sandbox.wait_for_event(cid, "DISCONNECT")
    time.sleep(0.2)
    log = echo_sandbox.log()
    # THEN each invocation has a log line, and the handler's own output is passed through
    for route in (r"\$connect", r"\$default", r"\$disconnect"):
        assert re.search(rf"{route} {re.escape(cid)} 200 \d+ms", log)
    assert f"fixture: CONNECT {cid}" in log
