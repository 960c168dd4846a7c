"""The server API's function (lambda_src/admin.py): payload format 2.0 events in, JSON
answers out, on the in-memory store and on DynamoChatStore (moto). Its routes are the
stack's (tests/infra/test_server_api.py); signatures are API Gateway's job, checked end
to end through the sandbox (tests/e2e/test_server_api_through_sandbox.py)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

import admin
import handler
from chat.operator import Operator
from chat.settings import RESERVED_NAMES
from tests.handler.test_rooms_handler import Stack
from tests.support.events import LambdaContext

OPERATOR_ARN = "arn:aws:iam::123456789012:role/oncall"


def http_event(
    route_key: str,
    *,
    path: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event, signed by OPERATOR_ARN."""
    method, _, raw_path = route_key.partition(" ")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "apiId": "abc123",
            "authorizer": {"iam": {"userArn": OPERATOR_ARN, "accessKey": "AKIA..."}},
            "http": {"method": method, "path": raw_path, "sourceIp": "203.0.113.9"},
            "requestId": "req-1",
            "routeKey": route_key,
            "stage": "$default",
        },
        "isBase64Encoded": base64_body,
    }
    if path:
        event["pathParameters"] = path
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        text = json.dumps(body)
        event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    return event


def answer(event: dict[str, Any]) -> tuple[int, Any]:
    response = admin.handler(event, LambdaContext())
    assert response["headers"] == {"content-type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture(params=["memory", "dynamo"])
def stack(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Stack:
    """The chat (for members to join through) and the admin function on the same store."""
    db = request.getfixturevalue("db") if request.param == "dynamo" else None
    chat = Stack(monkeypatch, db)
    operator = Operator(chat.store, reserved=RESERVED_NAMES)
    monkeypatch.setattr(admin, "operator", lambda: operator)
    monkeypatch.setattr(admin, "chat_service", vars(handler)["chat_service"])
    monkeypatch.setattr(admin, "settings", vars(handler)["settings"])
    return chat


def test_the_rooms_route_lists_the_lobby_then_the_registrys_rooms(stack):
    alice = stack.v2("Alice")
    stack.join(alice, "dev")
    stack.send(alice, {"action": "createRoom", "room": "secret", "kind": "private"})
    status, document = answer(http_event("GET /rooms"))
    assert status == 200
    assert [(r["room"], r["kind"]) for r in document["rooms"]] == [
        ("lobby", "public"),
        ("dev", "public"),
        ("secret", "private"),
    ]
    assert document["complete"] is True


def test_the_lobby_comes_first_even_after_a_v2_join_put_it_in_the_registry(stack):
    # GIVEN a v2 member who joined the lobby (which writes it into the registry) and a room
    # whose name sorts before "lobby"
    alice = stack.v2("Alice")
    stack.join(alice, "lobby")
    stack.join(alice, "bye-party")
    # WHEN an operator lists the rooms
    status, document = answer(http_event("GET /rooms"))
    # THEN the lobby is first, once
    assert status == 200
    assert [r["room"] for r in document["rooms"]] == ["lobby", "bye-party"]


def test_the_members_route_lists_who_is_in_a_room_with_their_protocol(stack):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.join(alice, "dev")
    stack.join(bob, "dev")
    carol = stack.v1("Carol")
    assert carol
    status, document = answer(http_event("GET /rooms/{room}/members", path={"room": "DEV"}))
    assert status == 200
    assert document["room"] == "dev"
    assert document["count"] == 2
    assert sorted(m["name"] for m in document["members"]) == ["Alice", "Bob"]
    assert {m["protocol"] for m in document["members"]} == {2}
    status, document = answer(http_event("GET /rooms/{room}/members", path={"room": "lobby"}))
    assert status == 200
    assert [m["name"] for m in document["members"]] == ["Carol"]


def test_a_private_rooms_members_are_visible_to_operators(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "createRoom", "room": "secret", "kind": "private"})
    status, document = answer(http_event("GET /rooms/{room}/members", path={"room": "secret"}))
    assert status == 200
    assert (document["kind"], document["count"]) == ("private", 1)


@pytest.mark.parametrize(
    ("room", "status", "code"),
    [("nosuchroom", 404, "ROOM_NOT_FOUND"), ("a#b", 400, "INVALID_ROOM")],
)
def test_an_unknown_or_invalid_room_is_refused_with_the_chats_code(stack, room, status, code):
    got = answer(http_event("GET /rooms/{room}/members", path={"room": room}))
    assert got[0] == status
    assert got[1]["error"]["code"] == code
    assert got[1]["error"]["message"]


def test_a_route_the_function_does_not_serve_is_404():
    status, document = answer(http_event("DELETE /everything"))
    assert (status, document["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "event",
    [
        http_event("GET /rooms", raw_body="{not json"),
        http_event("GET /rooms", raw_body="[1, 2]"),
        http_event("GET /rooms", raw_body="!!!", base64_body=True),
        http_event("GET /rooms", raw_body="x" * (admin.BODY_MAX_BYTES + 1)),
    ],
    ids=["not-json", "not-an-object", "bad-base64", "too-big"],
)
def test_a_body_that_is_not_one_json_object_is_400(stack, event):
    status, document = answer(event)
    assert (status, document["error"]["code"]) == (400, "INVALID_JSON")


def test_a_base64_body_is_decoded():
    event = http_event("POST /x", body={"a": 1}, base64_body=True)
    assert admin.read_body(event) == {"a": 1}


def test_a_failure_is_a_500_with_no_detail_and_a_logged_traceback(monkeypatch, caplog):
    def broken() -> Operator:
        raise RuntimeError("table gone")

    monkeypatch.setattr(admin, "operator", broken)
    with caplog.at_level(logging.ERROR, logger="chat.admin"):
        status, document = answer(http_event("GET /rooms"))
    assert status == 500
    assert document["error"]["code"] == "INTERNAL"
    assert "table gone" not in json.dumps(document)
    assert "table gone" in caplog.text


def test_each_request_is_logged_with_its_caller_route_and_status(stack, caplog):
    with caplog.at_level(logging.INFO, logger="chat.admin"):
        answer(http_event("GET /rooms"))
    (record,) = [r for r in caplog.records if r.getMessage() == "server api request"]
    assert record.caller == OPERATOR_ARN
    assert record.route == "GET /rooms"
    assert record.status == 200


def test_a_post_is_announced_in_the_room_by_the_system_and_kept_in_its_history(stack):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.join(alice, "dev")
    stack.join(bob, "dev")
    stack.notifier.clear()
    event = http_event(
        "POST /rooms/{room}/messages", path={"room": "dev"}, body={"message": "Maintenance at 6"}
    )
    assert answer(event) == (200, {"op": "announce", "done": True, "room": "dev"})
    (told,) = [f for f in stack.take(bob) if "moderation" in f]
    assert (told["by"], told["systemMessage"], told["seq"]) == ("system", "Maintenance at 6", 1)
    assert "reason" not in told  # the signer is never shown to members
    (entry,) = stack.store.audit_entries("dev", 10)
    assert entry.actor == f"system:{OPERATOR_ARN}"


def test_a_post_to_the_lobby_reaches_v1_clients_as_a_system_message(stack):
    carol = stack.v1("Carol")
    status, _ = answer(
        http_event("POST /rooms/{room}/messages", path={"room": "lobby"}, body={"message": "Hi"})
    )
    assert status == 200
    assert stack.take(carol) == [{"systemMessage": "Hi"}]


def test_any_moderation_op_runs_as_the_system_on_anyone(stack):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.join(alice, "dev")  # Alice created dev: its creator
    stack.join(bob, "dev")
    body = {"op": "kick", "room": "dev", "target": "Alice", "reason": "abuse"}
    assert answer(http_event("POST /moderation", body=body))[0] == 200
    assert {"left": "dev", "room": "dev"} in stack.take(alice)
    _, document = answer(http_event("GET /rooms/{room}/members", path={"room": "dev"}))
    assert [m["name"] for m in document["members"]] == ["Bob"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"op": "explode", "room": "dev"}, 400, "INVALID_MODERATION"),
        ({"op": "kick", "room": "dev", "target": "Nobody"}, 404, "UNKNOWN_RECIPIENT"),
        ({"op": "topic", "room": "nosuchroom", "topic": "x"}, 404, "ROOM_NOT_FOUND"),
        ({"op": "announce", "room": "dev"}, 400, "INVALID_MODERATION"),
    ],
)
def test_a_moderation_request_that_cannot_be_done_says_why(stack, body, status, code):
    alice = stack.v2("Alice")
    stack.join(alice, "dev")
    got = answer(http_event("POST /moderation", body=body))
    assert (got[0], got[1]["error"]["code"]) == (status, code)
