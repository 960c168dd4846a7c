"""Conformance (docs/sandbox.md): the $connect handshake and the CONNECT event (items 2-4, 6-10, 26,
33, 34), against the echo fixture stack."""

from __future__ import annotations

import http.client
import re
import time

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.sandbox import RawWebSocket, Sandbox, connection_id_of, handshake, new_tag

pytestmark = pytest.mark.sandbox

ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")
CLF = re.compile(r"^\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")


@pytest.mark.parametrize("status", [200, 201, 204])
def test_connect_2xx_accepts_and_event_has_connect_shape(
    echo_sandbox: Sandbox, status: int
) -> None:
    # GIVEN a $connect Lambda returning a 2xx status
    # WHEN a client connects
    with echo_sandbox.connect(f"status={status}") as ws:
        cid = connection_id_of(ws)
        # THEN the handshake succeeded (101) and the socket is usable
        assert handshake(ws).status_code == 101
    # AND the CONNECT event has the documented shape
    event = echo_sandbox.wait_for_event(cid, "CONNECT")
    context = event["requestContext"]
    assert context["eventType"] == "CONNECT"
    assert context["routeKey"] == "$connect"
    assert "messageId" not in context
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert type(context["connectedAt"]) is int
    assert type(context["requestTimeEpoch"]) is int
    assert context["stage"] == "dev"
    assert re.fullmatch(r"[0-9a-f]{10}", context["apiId"])


@pytest.mark.parametrize("status", [301, 400, 401, 403, 501])
def test_connect_non_2xx_rejects_handshake_with_that_status(
    echo_sandbox: Sandbox, status: int
) -> None:
    # GIVEN a $connect Lambda returning a non-2xx status
    tag = new_tag()
    # WHEN a client connects
    with pytest.raises(InvalidStatus) as rejected:
        echo_sandbox.connect(f"status={status}&tag={tag}")
    # THEN the handshake fails with exactly that HTTP status
    assert rejected.value.response.status_code == status
    # AND the connection never existed: GetConnection says Gone, no $disconnect runs
    cid = echo_sandbox.tagged_connection_id(tag)
    client = echo_sandbox.management()
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=cid)
    time.sleep(0.3)
    assert echo_sandbox.events(cid, "DISCONNECT") == []


def test_connect_exception_rejects_with_502(echo_sandbox: Sandbox) -> None:
    # GIVEN a $connect Lambda that raises
    # WHEN a client connects
    with pytest.raises(InvalidStatus) as rejected:
        echo_sandbox.connect("raise=1")
    # THEN the handshake fails with 502
    assert rejected.value.response.status_code == 502


def test_connect_lambda_timeout_rejects_with_502(echo_sandbox: Sandbox) -> None:
    # GIVEN a $connect Lambda that runs past its own 2 s timeout (well under 29 s)
    # WHEN a client connects
    with pytest.raises(InvalidStatus) as rejected:
        echo_sandbox.connect("sleep=3")
    # THEN the Lambda fails (Task timed out), which API Gateway reports as 502
    assert rejected.value.response.status_code == 502
    assert "Task timed out after 2.00 seconds" in echo_sandbox.log()


def test_query_string_becomes_single_and_multi_value_parameters(echo_sandbox: Sandbox) -> None:
    # GIVEN a query string WHEN a client connects with it
    with echo_sandbox.connect("a=1&b=x") as ws:
        cid = connection_id_of(ws)
    # THEN both maps are in the CONNECT event
    event = echo_sandbox.wait_for_event(cid, "CONNECT")
    assert event["queryStringParameters"] == {"a": "1", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1"], "b": ["x"]}


def test_no_query_string_means_no_query_keys(echo_sandbox: Sandbox) -> None:
    # GIVEN no query string WHEN a client connects
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
    # THEN the query keys are absent from the CONNECT event
    event = echo_sandbox.wait_for_event(cid, "CONNECT")
    assert "queryStringParameters" not in event
    assert "multiValueQueryStringParameters" not in event


def test_connect_headers_keep_case_and_gain_forwarding_headers(echo_sandbox: Sandbox) -> None:
    # GIVEN a client sending headers in unusual case and a User-Agent
    tag = new_tag()
    raw = RawWebSocket(
        echo_sandbox.port,
        f"/dev?tag={tag}",
        headers=[("x-Custom-CASE", "v"), ("User-Agent", "conformance/1.0")],
    )
    try:
        assert raw.status == 101
        cid = echo_sandbox.tagged_connection_id(tag)
        event = echo_sandbox.wait_for_event(cid, "CONNECT")
    finally:
        raw.close()
    # THEN the names keep their case, X-Forwarded-* and X-Amzn-Trace-Id are added,
    # and Connection/Upgrade are not passed on
    headers = event["headers"]
    assert headers["x-Custom-CASE"] == "v"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Port"] == str(echo_sandbox.port)
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert {"connection", "upgrade"}.isdisjoint(name.lower() for name in headers)
    assert set(event["multiValueHeaders"]) == set(headers)
    assert event["requestContext"]["identity"] == {
        "sourceIp": "127.0.0.1",
        "userAgent": "conformance/1.0",
    }


def test_identity_has_no_user_agent_when_none_was_sent(echo_sandbox: Sandbox) -> None:
    # GIVEN a client that sends no User-Agent WHEN it connects
    with echo_sandbox.connect(user_agent_header=None) as ws:
        cid = connection_id_of(ws)
        address = ws.socket.getsockname()[0]  # each client has its own (127.0.x.y)
    # THEN identity has sourceIp only: the client's own address
    event = echo_sandbox.wait_for_event(cid, "CONNECT")
    assert event["requestContext"]["identity"] == {"sourceIp": address}
    assert address.startswith("127.") and address != "127.0.0.1"
    assert "User-Agent" not in event["headers"]


def test_subprotocol_chosen_by_lambda_is_returned(echo_sandbox: Sandbox) -> None:
    # GIVEN a client offering "a, b" and a Lambda choosing "b"
    # WHEN it connects
    with echo_sandbox.connect("protocol=b", subprotocols=["a", "b"]) as ws:
        # THEN the 101 carries Sec-WebSocket-Protocol: b
        assert ws.subprotocol == "b"
        assert handshake(ws).headers["Sec-WebSocket-Protocol"] == "b"
        connection_id_of(ws)


def test_requested_subprotocol_is_not_echoed_automatically(echo_sandbox: Sandbox) -> None:
    # GIVEN a client offering a subprotocol and a Lambda that returns none
    # WHEN it connects
    with echo_sandbox.connect(subprotocols=["a"]) as ws:
        # THEN the 101 has no Sec-WebSocket-Protocol
        assert ws.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in handshake(ws).headers


def test_connect_response_headers_and_body_are_not_sent(echo_sandbox: Sandbox) -> None:
    # GIVEN a $connect Lambda returning extra headers and a body
    # WHEN a client connects
    with echo_sandbox.connect("extra=1") as ws:
        # THEN neither reaches the client: not in the 101, not as a frame
        assert "X-Extra" not in handshake(ws).headers
        assert "Set-Cookie" not in handshake(ws).headers
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)


def test_post_to_own_connection_during_connect_is_gone(echo_sandbox: Sandbox) -> None:
    # GIVEN a $connect Lambda that posts to its own connection id
    # WHEN a client connects
    with echo_sandbox.connect("post_self=1") as ws:
        cid = connection_id_of(ws)
    # THEN that post got 410 Gone (the Lambda recorded GoneException)
    record = echo_sandbox.wait_for_record(cid, "CONNECT")
    assert record["note"] == "GoneException"


def test_ids_and_request_time_have_aws_shapes(echo_sandbox: Sandbox) -> None:
    # GIVEN several connections, each with a message and a disconnect
    ids = []
    for _ in range(3):
        with echo_sandbox.connect() as ws:
            ids.append(connection_id_of(ws))
    # THEN connection ids are unique, 16 base64url characters ending in "="
    assert len(set(ids)) == 3
    assert all(ID.match(cid) for cid in ids)
    # AND every event has requestId == extendedRequestId and a CLF requestTime
    for cid in ids:
        echo_sandbox.wait_for_event(cid, "DISCONNECT")
        for record in echo_sandbox.records(cid):
            context = record["event"]["requestContext"]
            assert context["requestId"] == context["extendedRequestId"]
            assert ID.match(context["requestId"])
            assert CLF.match(context["requestTime"])


def test_plain_http_get_on_the_stage_is_426(echo_sandbox: Sandbox) -> None:
    # GIVEN a plain HTTP GET without Upgrade WHEN it hits the stage URL
    connection = http.client.HTTPConnection("127.0.0.1", echo_sandbox.port, timeout=5)
    connection.request("GET", "/dev")
    response = connection.getresponse()
    # THEN the answer is 426 Upgrade Required
    assert response.status == 426
    connection.close()
