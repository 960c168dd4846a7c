"""Conformance (docs/sandbox.md): the @connections management API and $disconnect (items 22-25,
27-30, 32), with boto3 against the echo fixture stack."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed

from sandbox.events import new_id
from tests.support.sandbox import RawWebSocket, Sandbox, connection_id_of, new_tag, wait_for

pytestmark = pytest.mark.sandbox

POST_LIMIT = 131072


def http_request(
    sandbox: Sandbox, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    connection = sandbox.https_connection(timeout=5)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_boto3_post_reaches_client_with_encoded_id(echo_sandbox: Sandbox) -> None:
    # GIVEN an open connection (its id ends in "=") and boto3 pointed at the callback URL
    client = echo_sandbox.management()
    urls: list[str] = []
    client.meta.events.register(
        "before-send.apigatewaymanagementapi.PostToConnection",
        lambda request, **_: urls.append(request.url),
    )
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        assert cid.endswith("=")
        # WHEN boto3 posts to it
        response = client.post_to_connection(ConnectionId=cid, Data=b"hi")
        # THEN the request path is /dev/@connections/<id with %3D>, the answer 200,
        # and the client receives the text frame
        assert urls == [f"{echo_sandbox.callback_url}/@connections/{quote(cid, safe='')}"]
        assert urls[0].endswith("%3D")
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert ws.recv(timeout=5) == "hi"


@pytest.mark.parametrize("prefix", ["/dev/%40connections", "/@connections", "/%40connections"])
def test_post_accepts_encoded_at_sign_and_missing_stage(echo_sandbox: Sandbox, prefix: str) -> None:
    # GIVEN an open connection
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN a raw POST uses %40connections, or no stage prefix
        status, _, _ = http_request(echo_sandbox, "POST", f"{prefix}/{quote(cid, safe='')}", b"raw")
        # THEN it is accepted and delivered
        assert status == 200
        assert ws.recv(timeout=5) == "raw"


def test_post_to_closed_connection_is_gone(echo_sandbox: Sandbox) -> None:
    # GIVEN a connection that has closed
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
    echo_sandbox.wait_for_event(cid, "DISCONNECT")
    client = echo_sandbox.management()
    # WHEN boto3 posts to it THEN it raises GoneException
    with pytest.raises(client.exceptions.GoneException) as gone:
        client.post_to_connection(ConnectionId=cid, Data=b"hi")
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    # AND on the wire it is 410 with x-amzn-ErrorType: GoneException
    status, headers, _ = http_request(
        echo_sandbox, "POST", f"/dev/@connections/{quote(cid, safe='')}", b"hi"
    )
    assert status == 410
    assert headers["x-amzn-ErrorType"] == "GoneException"


def test_post_to_unknown_id_is_gone_and_malformed_id_is_bad_request(
    echo_sandbox: Sandbox,
) -> None:
    client = echo_sandbox.management()
    # GIVEN a well-formed id that never existed WHEN posting THEN 410
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=new_id(), Data=b"hi")
    # GIVEN a malformed id WHEN posting THEN 400 BadRequestException
    with pytest.raises(ClientError) as bad:
        client.post_to_connection(ConnectionId="not-an-id", Data=b"hi")
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert bad.value.response["Error"]["Code"] == "BadRequestException"


def test_post_over_128k_is_payload_too_large(echo_sandbox: Sandbox) -> None:
    client = echo_sandbox.management()
    raw = RawWebSocket(echo_sandbox.port, "/dev")
    try:
        assert raw.status == 101
        raw.send_frame(0x1, b"{}")
        cid = json.loads(raw.recv_frame()[2])["requestContext"]["connectionId"]
        # GIVEN an open connection WHEN 131073 bytes are posted
        # THEN boto3 raises PayloadTooLargeException
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=cid, Data=b"x" * (POST_LIMIT + 1))
        # AND exactly 131072 bytes are delivered, split into frames of at most 32 KB
        client.post_to_connection(ConnectionId=cid, Data=b"y" * POST_LIMIT)
        sizes = []
        while True:
            fin, _, chunk = raw.recv_frame()
            sizes.append(len(chunk))
            if fin:
                break
        assert sum(sizes) == POST_LIMIT
        assert max(sizes) <= 32 * 1024
    finally:
        raw.close()


def test_invalid_utf8_post_is_sent_as_binary_frame(echo_sandbox: Sandbox) -> None:
    # GIVEN an open connection
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN bytes that are not UTF-8 are posted
        echo_sandbox.management().post_to_connection(ConnectionId=cid, Data=b"\xff\xfe")
        # THEN they arrive unchanged, as a binary frame
        assert ws.recv(timeout=5) == b"\xff\xfe"


def test_lambda_can_post_to_its_own_connection(echo_sandbox: Sandbox) -> None:
    # GIVEN a route whose Lambda posts via CALLBACK_URL (resolved to the sandbox)
    with echo_sandbox.connect() as ws:
        # WHEN it runs
        ws.send('{"action":"post","data":"pushed"}')
        # THEN the client receives the pushed frame
        assert ws.recv(timeout=5) == "pushed"


def test_post_to_own_connection_during_disconnect_is_gone(echo_sandbox: Sandbox) -> None:
    # GIVEN a $disconnect Lambda that posts to its own connection
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
    # WHEN the connection closes THEN that post got 410
    record = echo_sandbox.wait_for_record(cid, "DISCONNECT")
    assert record["note"] == "GoneException"


def test_get_connection_returns_times_and_identity(echo_sandbox: Sandbox) -> None:
    client = echo_sandbox.management()
    with echo_sandbox.connect(user_agent_header="conformance/2.0") as ws:
        cid = connection_id_of(ws)
        # GIVEN an open connection WHEN GetConnection is called
        first = client.get_connection(ConnectionId=cid)
        # THEN boto3 parses ISO-8601 datetimes and the identity
        assert isinstance(first["ConnectedAt"], dt.datetime)
        assert isinstance(first["LastActiveAt"], dt.datetime)
        address = ws.socket.getsockname()[0]
        assert first["Identity"] == {"SourceIp": address, "UserAgent": "conformance/2.0"}
        # AND LastActiveAt moves forward after a message
        time.sleep(0.05)
        connection_id_of(ws)
        second = client.get_connection(ConnectionId=cid)
        assert second["LastActiveAt"] > first["LastActiveAt"]
        assert second["ConnectedAt"] == first["ConnectedAt"]


def test_delete_connection_closes_with_1000_and_disconnect_says_normal(
    echo_sandbox: Sandbox,
) -> None:
    client = echo_sandbox.management()
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # GIVEN an open connection WHEN DeleteConnection is called
        response = client.delete_connection(ConnectionId=cid)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
        # THEN the client gets a close frame with 1000
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1000
    # AND $disconnect gets 1000 / "Connection Closed Normally"
    context = echo_sandbox.wait_for_event(cid, "DISCONNECT")["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (
        1000,
        "Connection Closed Normally",
    )
    # AND the connection is gone
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=cid)
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=cid)


def disconnect_context_after(sandbox: Sandbox, close: Any) -> dict[str, Any]:
    tag = new_tag()
    raw = RawWebSocket(sandbox.port, f"/dev?tag={tag}")
    assert raw.status == 101
    cid = sandbox.tagged_connection_id(tag)
    close(raw)
    context: dict[str, Any] = sandbox.wait_for_event(cid, "DISCONNECT")["requestContext"]
    return context


def test_client_close_code_is_passed_to_disconnect(echo_sandbox: Sandbox) -> None:
    # GIVEN a client closing with 1001 (a tab closing) THEN $disconnect gets 1001
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        ws.close(1001)
    context = echo_sandbox.wait_for_event(cid, "DISCONNECT")["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "")


def test_close_frame_without_status_gives_1005(echo_sandbox: Sandbox) -> None:
    # GIVEN a client sending a close frame with no status code
    def close(raw: RawWebSocket) -> None:
        raw.send_frame(0x8, b"")
        raw.recv_close_code()
        raw.close()

    context = disconnect_context_after(echo_sandbox, close)
    # THEN $disconnect gets 1005 and AWS's reason text
    assert context["disconnectStatusCode"] == 1005
    assert context["disconnectReason"] == "Client-side close frame status not set"


def test_tcp_drop_gives_1006(echo_sandbox: Sandbox) -> None:
    # GIVEN a client whose TCP connection just drops THEN $disconnect gets 1006
    context = disconnect_context_after(echo_sandbox, RawWebSocket.drop)
    assert context["disconnectStatusCode"] == 1006


def test_disconnect_event_shape(echo_sandbox: Sandbox) -> None:
    # GIVEN a connection that closes
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
    connect = echo_sandbox.wait_for_event(cid, "CONNECT")
    event = echo_sandbox.wait_for_event(cid, "DISCONNECT")
    # THEN the DISCONNECT event has AWS's fixed headers, no body or messageId,
    # and the connectedAt of the CONNECT event
    host = f"127.0.0.1:{echo_sandbox.port}"
    assert event["headers"] == {
        "Host": host,
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}
    assert "body" not in event
    context = event["requestContext"]
    assert "messageId" not in context
    assert context["eventType"] == "DISCONNECT"
    assert context["routeKey"] == "$disconnect"
    assert context["connectedAt"] == connect["requestContext"]["connectedAt"]
    assert event["isBase64Encoded"] is False


def test_disconnect_runs_once_per_connection(echo_sandbox: Sandbox) -> None:
    # GIVEN a connection deleted by the API while the client also closes
    client = echo_sandbox.management()
    with echo_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        client.delete_connection(ConnectionId=cid)
    # THEN exactly one $disconnect ran
    echo_sandbox.wait_for_event(cid, "DISCONNECT")
    time.sleep(0.5)
    assert len(echo_sandbox.events(cid, "DISCONNECT")) == 1


def test_disconnect_exception_is_invisible_and_server_stays_up(echo_sandbox: Sandbox) -> None:
    # GIVEN a $disconnect Lambda that raises for this connection
    with echo_sandbox.connect("disconnect=raise") as ws:
        cid = connection_id_of(ws)
    # WHEN the connection closes THEN the failure is only in the log
    echo_sandbox.wait_for_record(cid, "DISCONNECT")

    def logged() -> bool | None:
        return True if f"$disconnect {cid} error RuntimeError" in echo_sandbox.log() else None

    wait_for(logged, what="the $disconnect error line")
    # AND the server still accepts connections
    with echo_sandbox.connect() as ws:
        assert connection_id_of(ws)


def test_get_and_delete_of_unknown_ids(echo_sandbox: Sandbox) -> None:
    client = echo_sandbox.management()
    # GIVEN an id that never existed THEN GetConnection and DeleteConnection say Gone
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=new_id())
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=new_id())
