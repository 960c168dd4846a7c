"""The Lambda handler end to end: real event shapes in, frames out, state in (moto) DynamoDB."""

from __future__ import annotations

import json
import time

import pytest

import handler
from chat.store import connection_key
from sandbox.connections_standin import running_connections_api
from tests.support.aws import TABLE
from tests.support.events import (
    LambdaContext,
    connect_event,
    disconnect_event,
    message_event,
)

VALID = "Valid actions: setName, sendPublic, sendPrivate, ping."


@pytest.fixture
def api(db, monkeypatch):
    with running_connections_api() as state:
        monkeypatch.setenv("TABLE_NAME", TABLE)
        monkeypatch.setenv("CALLBACK_URL", state.url)
        monkeypatch.setenv("ALLOWED_ORIGINS", "https://chat.example.com")
        handler.reset()
        yield state
    handler.reset()


def invoke(event):
    return handler.lambda_handler(event, LambdaContext())


def connect(cid: str) -> None:
    assert invoke(connect_event(cid)) == {"statusCode": 200}


def send(cid: str, body) -> dict:
    return invoke(message_event(cid, body))


def join(api, *names: str) -> list[str]:
    ids = []
    for name in names:
        cid = f"{name[:10]:_<10}AAAAA="
        connect(cid)
        send(cid, {"action": "setName", "name": name})
        ids.append(cid)
    api.clear()
    return ids


def error_of(api, cid: str) -> dict:
    frames = api.take(cid)
    assert len(frames) == 1, frames
    return frames[0]["error"]


# --- the seed's trigger flow -----------------------------------------------------------


def test_seed_trigger_flow_produces_the_protocol_frames(api):
    # GIVEN Bob is in the chat
    (bob,) = join(api, "Bob")
    alice = "IU3kkeN4IAMCJwA="
    # WHEN Alice joins
    connect(alice)
    assert send(alice, {"action": "setName", "name": "Alice"}) == {"statusCode": 200}
    # THEN both get the members frame, then the join notice
    joined = [
        {"members": ["Alice", "Bob"]},
        {"systemMessage": "Alice has joined the chat", "event": "join", "name": "Alice"},
    ]
    assert api.take(alice) == joined
    assert api.take(bob) == joined

    # WHEN Alice says hello to everyone
    send(alice, {"action": "sendPublic", "message": "hello!"})
    (to_alice,) = api.take(alice)
    (to_bob,) = api.take(bob)
    assert to_alice == to_bob
    assert to_bob["publicMessage"] == "Alice: hello!"
    assert (to_bob["from"], to_bob["text"]) == ("Alice", "hello!")
    assert isinstance(to_bob["ts"], int)

    # WHEN Alice whispers to Bob
    send(alice, {"action": "sendPrivate", "to": "Bob", "message": "hi!"})
    (private,) = api.take(bob)
    assert private["privateMessage"] == "Alice: hi!"
    assert (private["from"], private["to"], private["text"]) == ("Alice", "Bob", "hi!")
    assert api.take(alice) == []


def test_connect_records_the_connection_and_tells_nobody(api, db):
    join(api, "Bob")
    connect("newcomer=")
    item = db.get_item(TableName=TABLE, Key=connection_key("newcomer="))["Item"]
    assert int(item["ttl"]["N"]) > item_age_limit()
    assert api.posts == []


def item_age_limit() -> int:
    return int(time.time()) + 2 * 3600


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["hello", "{not json", ""])
def test_non_json_frame_gets_invalid_json_naming_the_valid_actions(api, body):
    connect("c=")
    assert send("c=", body) == {"statusCode": 200}
    error = error_of(api, "c=")
    assert error["code"] == "INVALID_JSON"
    assert error["action"] is None
    assert "setName, sendPublic, sendPrivate" in error["message"]


@pytest.mark.parametrize("body", ["[1]", "42", "null", '"setName"'])
def test_json_that_is_not_an_object_gets_invalid_json(api, body):
    connect("c=")
    send("c=", body)
    assert error_of(api, "c=")["code"] == "INVALID_JSON"


@pytest.mark.parametrize(
    ("body", "action"),
    [({}, None), ({"action": None}, None), ({"action": "dance"}, "dance"), ({"action": 5}, None)],
)
def test_missing_or_unknown_action_gets_unknown_action(api, body, action):
    connect("c=")
    send("c=", body)
    error = error_of(api, "c=")
    assert error["code"] == "UNKNOWN_ACTION"
    assert error["action"] == action
    assert error["message"].endswith(VALID)


def test_ping_is_accepted_silently(api):
    connect("c=")
    send("c=", {"action": "ping"})
    assert api.posts == []


def test_invalid_name_error_names_the_action(api):
    connect("c=")
    send("c=", {"action": "setName", "name": "a:b"})
    error = error_of(api, "c=")
    assert error == {"code": "INVALID_NAME", "message": error["message"], "action": "setName"}


def test_taken_name_is_refused_to_the_claimant_only(api):
    (alice,) = join(api, "Alice")
    connect("c=")
    send("c=", {"action": "setName", "name": "alice"})
    assert error_of(api, "c=")["code"] == "NAME_TAKEN"
    assert api.take(alice) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action": "sendPublic", "message": "hi"}, "NAME_REQUIRED"),
        ({"action": "sendPrivate", "to": "Alice", "message": "hi"}, "NAME_REQUIRED"),
    ],
)
def test_sending_without_a_name_is_refused(api, body, code):
    join(api, "Alice")
    connect("c=")
    send("c=", body)
    error = error_of(api, "c=")
    assert (error["code"], error["action"]) == (code, body["action"])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action": "sendPublic", "message": "   "}, "INVALID_MESSAGE"),
        ({"action": "sendPublic"}, "INVALID_MESSAGE"),
        ({"action": "sendPublic", "message": "x" * 2001}, "MESSAGE_TOO_LONG"),
        ({"action": "sendPrivate", "to": "Bob", "message": ""}, "INVALID_MESSAGE"),
        ({"action": "sendPrivate", "to": "Nobody", "message": "hi"}, "UNKNOWN_RECIPIENT"),
        ({"action": "sendPrivate", "message": "hi"}, "UNKNOWN_RECIPIENT"),
    ],
)
def test_bad_messages_get_an_error_and_disturb_nobody(api, body, code):
    alice, bob = join(api, "Alice", "Bob")
    send(alice, body)
    assert error_of(api, alice)["code"] == code
    assert api.take(bob) == []


def test_unexpected_fault_sends_internal_without_details_and_logs_the_trace(api, db, capsys):
    (alice,) = join(api, "Alice")
    db.delete_table(TableName=TABLE)
    capsys.readouterr()
    assert send(alice, {"action": "sendPublic", "message": "hi"}) == {"statusCode": 200}
    error = error_of(api, alice)
    assert error["code"] == "INTERNAL"
    assert "ResourceNotFound" not in error["message"]
    assert "Traceback" not in json.dumps(error)
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failure = next(line for line in logged if line["level"] == "ERROR")
    assert "ResourceNotFoundException" in failure["exception"]


def test_connect_fails_the_handshake_when_the_connection_cannot_be_recorded(api, db):
    db.delete_table(TableName=TABLE)
    assert invoke(connect_event("c=")) == {"statusCode": 500}


def test_missing_configuration_is_an_internal_error_not_a_crash(monkeypatch):
    monkeypatch.delenv("TABLE_NAME", raising=False)
    handler.reset()
    assert invoke(connect_event("c=")) == {"statusCode": 500}
    assert invoke(message_event("c=", {"action": "ping"})) == {"statusCode": 200}
    handler.reset()


# --- leaving ----------------------------------------------------------------------------


def test_disconnect_tells_the_others_and_is_safe_twice(api, db):
    alice, bob = join(api, "Alice", "Bob")
    assert invoke(disconnect_event(alice)) == {"statusCode": 200}
    assert invoke(disconnect_event(alice)) == {"statusCode": 200}
    assert api.take(bob) == [
        {"systemMessage": "Alice has left the chat", "event": "leave", "name": "Alice"},
        {"members": ["Bob"]},
    ]
    remaining = json.dumps(db.scan(TableName=TABLE)["Items"])
    assert "Alice" not in remaining
    assert alice not in remaining


def test_gone_recipient_is_pruned_by_the_next_broadcast(api):
    alice, bob, carol = join(api, "Alice", "Bob", "Carol")
    api.gone.add(bob)
    send(alice, {"action": "sendPublic", "message": "anyone?"})
    leave = {"systemMessage": "Bob has left the chat", "event": "leave", "name": "Bob"}
    assert api.take(carol)[1:] == [leave, {"members": ["Alice", "Carol"]}]
    connect("d=")
    send("d=", {"action": "setName", "name": "bob"})  # the name is free again
    assert api.take("d=")[0] == {"members": ["Alice", "bob", "Carol"]}


def test_logs_are_json_with_route_and_outcome_and_never_message_bodies(api, capsys):
    (alice,) = join(api, "Alice")
    capsys.readouterr()
    send(alice, {"action": "sendPublic", "message": "top secret"})
    send(alice, {"action": "sendPublic", "message": ""})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    requests = [line for line in lines if line["message"] == "request"]
    assert [(r["route"], r["outcome"]) for r in requests] == [
        ("sendPublic", "ok"),
        ("sendPublic", "INVALID_MESSAGE"),
    ]
    assert all(r["connectionId"] == alice and r["requestId"] for r in requests)
    assert "top secret" not in json.dumps(lines)
