"""Event builders, ids and the gateway's error frames, without a server."""

from __future__ import annotations

import json
import re

from sandbox.events import (
    ConnectionInfo,
    ForwardingInfo,
    connect_event,
    disconnect_event,
    error_frame,
    gateway_headers,
    is_valid_connection_id,
    iso8601,
    message_event,
    new_id,
    request_time,
    without_hop_by_hop,
)

INFO = ConnectionInfo(
    connection_id="IU3kkeN4IAMCJwA=",
    connected_at=1689794896145,
    api_id="lqrlmblaa2",
    stage="dev",
    domain_name="127.0.0.1:8080",
    source_ip="24.148.42.16",
    user_agent=None,
)
ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")


def test_ids_are_16_base64url_characters_ending_in_equals() -> None:
    # GIVEN many fresh ids
    ids = {new_id() for _ in range(500)}
    # THEN they are unique, shaped like AWS's, and accepted as connection ids
    assert len(ids) == 500
    assert all(ID.match(i) and is_valid_connection_id(i) for i in ids)


def test_malformed_connection_ids_are_recognised() -> None:
    # GIVEN ids of the wrong shape THEN they are not valid connection ids
    for bad in ("abc", "IU3kkeN4IAMCJwA", "IU3kkeN4IAMCJwA==", "IU3kkeN4IAMC/wA=", ""):
        assert not is_valid_connection_id(bad)


def test_request_time_is_clf_in_utc() -> None:
    # GIVEN the epoch ms of a real capture WHEN formatted THEN it matches AWS's CLF form
    assert request_time(1689794896162) == "19/Jul/2023:19:28:16 +0000"
    assert iso8601(1689794896162) == "2023-07-19T19:28:16.162Z"


def test_connect_event_has_headers_query_and_no_message_fields() -> None:
    # GIVEN a handshake with a query string
    headers = [("Host", "127.0.0.1:8080"), ("x-Custom", "1")]
    # WHEN the CONNECT event is built
    event = connect_event(
        INFO,
        headers=headers,
        query=[("a", "1"), ("b", "x"), ("a", "2")],
        request_id="HXT_RfBnPHcCIIg=",
        request_ms=1689794896162,
    )
    # THEN it has AWS's shape: last value wins in the single-value maps
    assert event["headers"] == {"Host": "127.0.0.1:8080", "x-Custom": "1"}
    assert event["multiValueHeaders"] == {"Host": ["127.0.0.1:8080"], "x-Custom": ["1"]}
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["eventType"] == "CONNECT"
    assert context["routeKey"] == "$connect"
    assert context["requestId"] == context["extendedRequestId"] == "HXT_RfBnPHcCIIg="
    assert context["requestTime"] == "19/Jul/2023:19:28:16 +0000"
    assert context["requestTimeEpoch"] == 1689794896162
    assert context["connectedAt"] == 1689794896145
    assert context["messageDirection"] == "IN"
    assert context["identity"] == {"sourceIp": "24.148.42.16"}
    assert "messageId" not in context
    assert "disconnectStatusCode" not in context


def test_connect_event_without_query_has_no_query_keys() -> None:
    # GIVEN a handshake without a query WHEN the event is built
    event = connect_event(INFO, headers=[], query=[], request_id="r", request_ms=1)
    # THEN both query keys are absent (not null, not {})
    assert "queryStringParameters" not in event
    assert "multiValueQueryStringParameters" not in event


def test_connect_headers_drop_hop_by_hop_and_add_forwarding() -> None:
    # GIVEN the raw handshake headers
    raw = [
        ("Host", "h"),
        ("Connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("x-forwarded-for", "10.0.0.1"),
        ("Sec-WebSocket-Key", "k"),
    ]
    # WHEN they are turned into the authorizer's and the $connect route's headers
    forwarded = gateway_headers(
        raw, source_ip="1.2.3.4", forwarding=ForwardingInfo("http", 8080), request_ms=0
    )
    authorizer, route = dict(forwarded), dict(without_hop_by_hop(forwarded))
    # THEN the authorizer sees Connection/Upgrade and the route does not
    assert authorizer["Connection"] == "Upgrade" and authorizer["upgrade"] == "websocket"
    assert "Connection" not in route and "upgrade" not in route
    # AND both have the client IP appended and X-Forwarded-* set, with the same trace id
    for headers in (authorizer, route):
        assert headers["x-forwarded-for"] == "10.0.0.1, 1.2.3.4"
        assert headers["X-Forwarded-Port"] == "8080"
        assert headers["X-Forwarded-Proto"] == "http"
        assert re.fullmatch(r"Root=1-00000000-[0-9a-f]{24}", headers["X-Amzn-Trace-Id"])
        assert headers["Sec-WebSocket-Key"] == "k"
    assert authorizer["X-Amzn-Trace-Id"] == route["X-Amzn-Trace-Id"]


def test_message_event_has_body_message_id_and_no_headers() -> None:
    # GIVEN a text frame WHEN the MESSAGE event is built
    event = message_event(
        INFO,
        route_key="join",
        body='{"action":"join"}',
        request_id="r",
        message_id="m",
        request_ms=2,
    )
    # THEN it carries the raw body and messageId, and no headers
    assert set(event) == {"requestContext", "body", "isBase64Encoded"}
    assert event["body"] == '{"action":"join"}'
    assert event["requestContext"]["messageId"] == "m"
    assert event["requestContext"]["eventType"] == "MESSAGE"
    assert event["requestContext"]["routeKey"] == "join"


def test_disconnect_event_has_fixed_headers_and_close_status() -> None:
    # GIVEN a closed connection WHEN the DISCONNECT event is built
    event = disconnect_event(
        INFO,
        status_code=1005,
        reason="Client-side close frame status not set",
        request_id="r",
        request_ms=3,
    )
    # THEN it has AWS's fixed headers and the close code and reason
    assert event["headers"] == {
        "Host": "127.0.0.1:8080",
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    assert event["multiValueHeaders"] == {
        "Host": ["127.0.0.1:8080"],
        "x-api-key": [""],
        "X-Forwarded-For": [""],
        "x-restapi": [""],
    }
    context = event["requestContext"]
    assert context["disconnectStatusCode"] == 1005
    assert context["disconnectReason"] == "Client-side close frame status not set"
    assert context["connectedAt"] == INFO.connected_at
    assert "messageId" not in context and "body" not in event


def test_error_frame_spacing_matches_aws_exactly() -> None:
    # GIVEN ids WHEN the Forbidden frame is built
    frame = error_frame("Forbidden", "XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ=")
    # THEN it is byte-for-byte the captured frame, and valid JSON
    assert frame == (
        '{"message": "Forbidden", "connectionId":"XDmENcnwIE0CFEQ=", '
        '"requestId":"XDmGEE2RoE0FRdQ="}'
    )
    assert json.loads(frame)["message"] == "Forbidden"
