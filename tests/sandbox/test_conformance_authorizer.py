"""Conformance (docs/sandbox.md): a Lambda REQUEST authorizer on $connect, against the
authorizer fixture stack (identity source `route.request.querystring.token`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.sandbox import FIXTURES, Sandbox, connection_id_of, new_tag, running_sandbox

pytestmark = pytest.mark.sandbox

AUTHORIZER_TEMPLATE = FIXTURES / "authorizer.template.json"
CONTEXT = {"user": "alice", "level": "3", "admin": "true", "principalId": "user-alice"}


@pytest.fixture(scope="module")
def auth_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The authorizer fixture stack: the echo function behind an authorized $connect."""
    with running_sandbox(AUTHORIZER_TEMPLATE, tmp_path_factory.mktemp("authorizer")) as sandbox:
        yield sandbox


def items(sandbox: Sandbox, pk: str) -> list[dict[str, Any]]:
    """The raw DynamoDB items the fixture functions wrote under `pk`."""
    found: list[dict[str, Any]] = sandbox.dynamodb().query(
        TableName="EventsTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]
    return found


def rejected_status(sandbox: Sandbox, query: str) -> int:
    """The HTTP status of a handshake that must fail."""
    with pytest.raises(InvalidStatus) as rejected:
        sandbox.connect(query)
    status: int = rejected.value.response.status_code
    return status


def without_latency(authorizer: dict[str, Any]) -> dict[str, Any]:
    assert type(authorizer["integrationLatency"]) is int
    return {k: v for k, v in authorizer.items() if k != "integrationLatency"}


@pytest.mark.parametrize("query", ["", "token=", "other=allow"])
def test_missing_identity_source_is_401_without_invoking_the_authorizer(
    auth_sandbox: Sandbox, query: str
) -> None:
    # GIVEN a handshake whose `token` query parameter is absent or empty
    tag = new_tag()
    # WHEN the client connects
    status = rejected_status(auth_sandbox, "&".join(filter(None, [query, f"tag={tag}"])))
    # THEN the handshake fails with 401
    assert status == 401
    # AND neither the authorizer nor the $connect function ran
    time.sleep(0.3)
    assert items(auth_sandbox, f"authorizer#{tag}") == []
    assert items(auth_sandbox, f"tag#{tag}") == []
    assert "no route.request.querystring.token; authorizer not invoked" in auth_sandbox.log()


def test_allow_connects_and_context_reaches_every_event(auth_sandbox: Sandbox) -> None:
    # GIVEN an authorizer that allows the token and returns a context
    # WHEN the client connects and sends a message
    with auth_sandbox.connect("token=allow") as ws:
        cid = connection_id_of(ws)
    # THEN the connection was made, and CONNECT, MESSAGE and DISCONNECT events all carry
    # the context (values stringified) with principalId in requestContext.authorizer
    auth_sandbox.wait_for_event(cid, "DISCONNECT")
    for event_type in ("CONNECT", "MESSAGE", "DISCONNECT"):
        (event,) = auth_sandbox.events(cid, event_type)
        assert without_latency(event["requestContext"]["authorizer"]) == CONTEXT


def test_authorizer_event_has_the_request_authorizer_shape(auth_sandbox: Sandbox) -> None:
    # GIVEN an allowed client WHEN it connects with a tagged query string
    tag = new_tag()
    with auth_sandbox.connect(f"token=allow&tag={tag}") as ws:
        cid = connection_id_of(ws)
    (record,) = items(auth_sandbox, f"authorizer#{tag}")
    connect = auth_sandbox.wait_for_event(cid, "CONNECT")
    # THEN the authorizer got a REQUEST event with the $connect method ARN
    event = json.loads(record["event"]["S"])
    api_id = connect["requestContext"]["apiId"]
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == f"arn:aws:execute-api:us-east-1:000000000000:{api_id}/dev/$connect"
    # AND the headers, Connection and Upgrade included, and both query maps
    headers = {name.lower(): value for name, value in event["headers"].items()}
    assert headers["upgrade"] == "websocket"
    assert "connection" in headers
    assert set(event["multiValueHeaders"]) == set(event["headers"])
    assert event["queryStringParameters"] == {"token": "allow", "tag": tag}
    assert event["multiValueQueryStringParameters"] == {"token": ["allow"], "tag": [tag]}
    assert event["stageVariables"] == {}
    # AND the CONNECT request context of the same request, without an authorizer yet
    context = event["requestContext"]
    assert (context["eventType"], context["routeKey"]) == ("CONNECT", "$connect")
    assert context["connectionId"] == cid
    assert context["requestId"] == connect["requestContext"]["requestId"]
    assert "authorizer" not in context
    # AND the $connect route does not see Connection and Upgrade
    assert {"connection", "upgrade"}.isdisjoint(name.lower() for name in connect["headers"])


@pytest.mark.parametrize("token", ["deny", "elsewhere"])
def test_deny_or_no_matching_allow_is_403(auth_sandbox: Sandbox, token: str) -> None:
    # GIVEN a policy that denies $connect, or allows only another API
    tag = new_tag()
    # WHEN the client connects THEN the handshake fails with 403
    assert rejected_status(auth_sandbox, f"token={token}&tag={tag}") == 403
    # AND the authorizer ran but the $connect function did not
    assert len(items(auth_sandbox, f"authorizer#{tag}")) == 1
    assert items(auth_sandbox, f"tag#{tag}") == []


@pytest.mark.parametrize("token", ["boom", "invalid", "nested"])
def test_authorizer_error_or_invalid_output_is_500(auth_sandbox: Sandbox, token: str) -> None:
    # GIVEN an authorizer that raises, returns no policy, or puts an array in its context
    tag = new_tag()
    # WHEN the client connects THEN the handshake fails with 500
    assert rejected_status(auth_sandbox, f"token={token}&tag={tag}") == 500
    assert items(auth_sandbox, f"tag#{tag}") == []


def test_oversize_authorizer_result_is_500(auth_sandbox: Sandbox) -> None:
    # GIVEN an authorizer that allows but returns a context of more than 8 KB
    tag = new_tag()
    # WHEN the client connects THEN the handshake fails with 500
    assert rejected_status(auth_sandbox, f"token=huge&tag={tag}") == 500
    assert items(auth_sandbox, f"tag#{tag}") == []
    assert "exceeds 8192" in auth_sandbox.log()


def test_connect_times_agree_after_an_authorizer(auth_sandbox: Sandbox) -> None:
    # item 49, with an authorizer that takes its time (it writes to DynamoDB first)
    tag = new_tag()
    with auth_sandbox.connect(f"token=allow&tag={tag}") as ws:
        cid = connection_id_of(ws)
    (record,) = items(auth_sandbox, f"authorizer#{tag}")
    authorizer = json.loads(record["event"]["S"])["requestContext"]
    connect = auth_sandbox.wait_for_event(cid, "CONNECT")["requestContext"]
    # THEN both events of the one upgrade request carry its time, within a few milliseconds
    # of connectedAt, however long the authorizer ran
    for context in (authorizer, connect):
        assert context["connectedAt"] == connect["connectedAt"]
        assert abs(context["requestTimeEpoch"] - context["connectedAt"]) <= 5
