"""Conformance (docs/sandbox.md): edge cases of the handshake, the events' times and the
@connections API (items 44-51), against the echo fixture stack."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from collections.abc import Callable
from urllib.parse import quote

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.sandbox import RawWebSocket, Sandbox, connection_id_of, new_tag, wait_for

pytestmark = pytest.mark.sandbox

POST_LIMIT = 131072
TRACE_HEADER = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")


def http_request(sandbox: Sandbox, method: str, path: str, body: bytes = b"") -> int:
    connection = sandbox.https_connection(timeout=5)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_post_of_exactly_128_kb_arrives_whole_and_one_byte_more_is_413(
    echo_sandbox: Sandbox,
) -> None:
    # item 44
    client = echo_sandbox.management()
    payload = ("0123456789abcdef" * (POST_LIMIT // 16)).encode()
    assert len(payload) == POST_LIMIT
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # GIVEN an open connection WHEN one byte over 128 KB is posted THEN 413, nothing sent
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=cid, Data=payload + b"!")
        # WHEN exactly 128 KB is posted THEN the client gets it as one whole message
        client.post_to_connection(ConnectionId=cid, Data=payload)
        assert ws.recv(timeout=5) == payload.decode()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)


def test_last_active_at_moves_forward_after_a_client_message(echo_sandbox: Sandbox) -> None:
    # item 45
    client = echo_sandbox.management()
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        before = client.get_connection(ConnectionId=cid)["LastActiveAt"]
        time.sleep(0.05)
        # GIVEN an open connection WHEN the client sends a message on a one-way route
        # (nothing is sent back)
        ws.send('{"action":"oneway"}')
        echo_sandbox.wait_for_event(cid, "MESSAGE")
        # THEN GetConnection's lastActiveAt has moved forward
        after = client.get_connection(ConnectionId=cid)["LastActiveAt"]
        assert after > before
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)


def test_a_client_that_leaves_during_a_slow_connect_gets_no_disconnect(
    echo_sandbox: Sandbox,
) -> None:
    # item 46
    client = echo_sandbox.management()
    tag = new_tag()
    # GIVEN an upgrade request whose $connect takes a second
    sock = socket.create_connection(("127.0.0.1", echo_sandbox.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /dev?sleep=1&tag={tag} HTTP/1.1\r\nHost: 127.0.0.1:{echo_sandbox.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    cid = echo_sandbox.tagged_connection_id(tag)
    # THEN while $connect runs, the connection does not exist yet: GET gives 410
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=cid)
    # WHEN the client leaves before the handshake completes
    sock.close()

    def connect_finished() -> bool | None:
        found = re.search(rf"\$connect {re.escape(cid)} client left", echo_sandbox.log())
        return True if found else None

    wait_for(connect_finished, timeout=5, what="the end of the slow $connect")
    # THEN the connection never existed: GET gives 410, and no $disconnect runs
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=cid)
    time.sleep(0.5)
    assert echo_sandbox.events(cid, "DISCONNECT") == []
    # AND the sandbox reports it in one line, without a traceback
    assert "Error handling request" not in echo_sandbox.log()


@pytest.mark.parametrize(
    ("prefix", "encode", "suffix"),
    [
        ("/dev/@connections/", lambda cid: quote(cid, safe=""), ""),
        ("/dev/@connections/", lambda cid: "".join(f"%{ord(c):02X}" for c in cid), ""),
        ("/dev/@connections/", lambda cid: quote(cid, safe=""), "/"),
        ("/dev/%40connections/", lambda cid: cid, "/"),
    ],
    ids=["encoded-equals", "every-character-encoded", "trailing-slash", "raw-id-trailing-slash"],
)
def test_connections_accepts_percent_encoded_ids_and_a_trailing_slash(
    echo_sandbox: Sandbox, prefix: str, encode: Callable[[str], str], suffix: str
) -> None:
    # item 47
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        path = f"{prefix}{encode(cid)}{suffix}"
        # GIVEN a path spelling the id percent-encoded, or ending in "/"
        # THEN POST delivers, GET describes and DELETE closes the connection
        assert http_request(echo_sandbox, "POST", path, b"spelled") == 200
        assert ws.recv(timeout=5) == "spelled"
        assert http_request(echo_sandbox, "GET", path) == 200
        assert http_request(echo_sandbox, "DELETE", path) == 204
        assert http_request(echo_sandbox, "GET", path) == 410


def test_a_post_to_a_closing_connection_is_gone(echo_sandbox: Sandbox) -> None:
    # item 48
    client = echo_sandbox.management()
    tag = new_tag()
    # GIVEN a client that will not answer the server's close frame right away
    raw = RawWebSocket(echo_sandbox.port, f"/dev?tag={tag}")
    try:
        assert raw.status == 101
        cid = echo_sandbox.tagged_connection_id(tag)
        # WHEN the connection is deleted (the server's close handshake is under way)
        client.delete_connection(ConnectionId=cid)
        # THEN a post to it gets 410, and the client only gets the close frame
        with pytest.raises(client.exceptions.GoneException):
            client.post_to_connection(ConnectionId=cid, Data=b"too late")
        assert raw.recv_close_code() == 1000
    finally:
        raw.close()


def test_connected_at_agrees_with_the_connect_request_time_and_precedes_messages(
    echo_sandbox: Sandbox,
) -> None:
    # item 49
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        time.sleep(0.05)
        connection_id_of(ws)
    connect = echo_sandbox.wait_for_event(cid, "CONNECT")["requestContext"]
    messages = [r["event"]["requestContext"] for r in echo_sandbox.records(cid)]
    messages = [c for c in messages if c["eventType"] == "MESSAGE"]
    # THEN on CONNECT, requestTimeEpoch and connectedAt agree within a few milliseconds
    assert abs(connect["requestTimeEpoch"] - connect["connectedAt"]) <= 5
    # AND a later MESSAGE keeps the connection's connectedAt, earlier than its request time
    assert len(messages) == 2
    for message in messages:
        assert message["connectedAt"] == connect["connectedAt"]
        assert message["requestTimeEpoch"] > message["connectedAt"]
    assert messages[1]["requestTimeEpoch"] - messages[1]["connectedAt"] >= 50


@pytest.mark.parametrize("status", [401, 500, 502])
def test_connect_status_reaches_the_client_exactly(echo_sandbox: Sandbox, status: int) -> None:
    # item 50: GIVEN a $connect function returning this status WHEN a client connects
    with pytest.raises(InvalidStatus) as rejected:
        echo_sandbox.connect(f"status={status}")
    # THEN the handshake fails with exactly that status
    assert rejected.value.response.status_code == status


def test_each_invocation_has_its_own_trace_header(echo_sandbox: Sandbox) -> None:
    # item 51: GIVEN two invocations of a function that reports its environment
    def trace() -> str:
        with echo_sandbox.connect() as ws:
            ws.send('{"action":"context"}')
            value: str = json.loads(ws.recv(timeout=10))["env"]["_X_AMZN_TRACE_ID"]
            return value

    first, second = trace(), trace()
    # THEN each saw an X-Ray trace header in _X_AMZN_TRACE_ID, different each time
    assert TRACE_HEADER.match(first)
    assert TRACE_HEADER.match(second)
    assert first.split(";")[0] != second.split(";")[0]
