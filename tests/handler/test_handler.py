"""The Lambda handler end to end: real event shapes in, frames out, state in (moto) DynamoDB."""

from __future__ import annotations

import json
import time

import pytest

import handler
from chat import wiring
from chat.store import connection_key
from sandbox.connections_standin import running_connections_api
from tests.support.aws import TABLE
from tests.support.events import (
    LambdaContext,
    connect_event,
    disconnect_event,
    message_event,
)
from tests.support.frames import PlainFrames

VALID = "Valid actions: setName, sendPublic, sendPrivate, ping, history."


@pytest.fixture
def api(db, monkeypatch):
    with running_connections_api() as state:
        monkeypatch.setenv("TABLE_NAME", TABLE)
        monkeypatch.setenv("CALLBACK_URL", state.url)
        monkeypatch.setenv(
            "ALLOWED_ORIGINS", "https://chat.example.com,http://127.0.0.1,http://localhost"
        )
        handler.reset()
        yield PlainFrames(state)
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
    [({}, None), ({"action": None}, None), ({"action": "dance"}, None), ({"action": 5}, None)],
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
    failure = next(line for line in logged if line.get("level") == "ERROR")
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
    # Log lines and the metrics' EMF lines (no "message"; see tests/unit/test_telemetry.py).
    requests = [line for line in lines if line.get("message") == "request"]
    assert [(r["route"], r["outcome"]) for r in requests] == [
        ("sendPublic", "ok"),
        ("sendPublic", "INVALID_MESSAGE"),
    ]
    assert all(r["connectionId"] == alice and r["requestId"] for r in requests)
    assert "top secret" not in json.dumps(lines)


# --- abuse limits, origins, sign-in and hostile input -------------------------------------


def stop_the_clock(monkeypatch) -> None:
    """Hold the chat's clock still, so a token bucket refills nothing however slowly a busy
    machine runs the frames (the buckets' refill is tested in tests/unit and tests/adapters)."""
    now = time.time()
    service = wiring.chat_service()
    monkeypatch.setattr(service, "_clock", lambda: now)
    monkeypatch.setattr(service._store, "_clock", lambda: now)


def test_a_flood_from_one_client_is_cut_to_the_burst_and_answered_rate_limited(api, monkeypatch):
    # GIVEN Alice and Bob in the chat (default limits: a burst of 10 messages), the clock held
    alice, bob = join(api, "Alice", "Bob")
    stop_the_clock(monkeypatch)
    # WHEN Alice sends 25 public messages at once
    for n in range(25):
        send(alice, {"action": "sendPublic", "message": f"m{n}"})
    # THEN Bob receives the burst, and Alice is told the wait for each of the other 15
    received = [f for f in api.take(bob) if "publicMessage" in f]
    assert [f["text"] for f in received] == [f"m{n}" for n in range(10)]
    refusals = [f["error"] for f in api.take(alice) if "error" in f]
    assert len(refusals) == 15
    assert {r["code"] for r in refusals} == {"RATE_LIMITED"}
    assert all(r["retryAfterMs"] > 0 and r["action"] == "sendPublic" for r in refusals)


def test_a_client_that_keeps_flooding_is_disconnected(api, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_STRIKES", "5")
    handler.reset()
    (alice,) = join(api, "Alice")
    stop_the_clock(monkeypatch)
    for n in range(20):
        send(alice, {"action": "sendPublic", "message": f"m{n}"})
    assert api.closed == [alice]


def test_renames_have_their_own_stricter_limit(api):
    (alice,) = join(api, "Alice")  # the join took one of the 3 name tokens
    for n in range(4):
        send(alice, {"action": "setName", "name": f"Alice{n}"})
    codes = [f["error"]["code"] for f in api.frames(alice) if "error" in f]
    assert codes == ["RATE_LIMITED", "RATE_LIMITED"]
    # Messages still flow: the buckets are separate
    api.clear()
    send(alice, {"action": "sendPublic", "message": "still here"})
    assert api.take(alice)[0]["text"] == "still here"


def test_the_room_refuses_joins_past_its_maximum_size(api, monkeypatch):
    monkeypatch.setenv("MAX_ROOM_SIZE", "2")
    handler.reset()
    join(api, "Alice", "Bob")
    connect("carol_____AAAAA=")
    send("carol_____AAAAA=", {"action": "setName", "name": "Carol"})
    assert error_of(api, "carol_____AAAAA=")["code"] == "ROOM_FULL"


def test_an_unnamed_sender_is_refused_without_reading_the_room(api, monkeypatch):
    # GIVEN a connection without a name, and a room read that would fail the test
    connect("lurker____AAAAA=")
    store = wiring.chat_service()._store
    monkeypatch.setattr(store, "list_members", lambda: pytest.fail("the room was read"))
    send("lurker____AAAAA=", {"action": "sendPublic", "message": "hi"})
    assert error_of(api, "lurker____AAAAA=")["code"] == "NAME_REQUIRED"


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://chat.example.com", 200),
        ("https://evil.example.com", 403),
        ("null", 403),
        ("http://127.0.0.1:8080", 200),  # loopback: the sandbox, any port
        ("http://localhost:3000", 200),
        (None, 200),  # not a browser: allowed by default (allowMissingOrigin)
    ],
)
def test_connect_checks_the_origin(api, db, origin, status):
    event = connect_event("origin____AAAAA=")
    event["headers"].pop("Origin")
    if origin is not None:
        event["headers"]["origin"] = origin
    assert invoke(event) == {"statusCode": status}
    recorded = db.get_item(TableName=TABLE, Key=connection_key("origin____AAAAA="))
    assert ("Item" in recorded) is (status == 200)


def test_clients_without_an_origin_can_be_refused(api, monkeypatch):
    monkeypatch.setenv("ALLOW_MISSING_ORIGIN", "false")
    handler.reset()
    event = connect_event("noorigin__AAAAA=")
    event["headers"].pop("Origin")
    assert invoke(event) == {"statusCode": 403}


def test_sign_in_binds_the_chat_name_to_the_token(api, monkeypatch):
    monkeypatch.setenv("SIGN_IN_REQUIRED", "true")
    handler.reset()
    # GIVEN a connection whose authorizer vouched for the name "Alice"
    event = connect_event("signed____AAAAA=")
    event["requestContext"]["authorizer"] = {"principalId": "sub-1", "name": "Alice"}
    assert invoke(event) == {"statusCode": 200}
    # WHEN it tries to call itself Bob THEN it is refused; Alice works
    send("signed____AAAAA=", {"action": "setName", "name": "Bob"})
    assert error_of(api, "signed____AAAAA=")["code"] == "INVALID_NAME"
    send("signed____AAAAA=", {"action": "setName", "name": "Alice"})
    assert api.take("signed____AAAAA=")[0] == {"members": ["Alice"]}
    # AND a connection without a usable name from sign-in is refused at the handshake
    unsigned = connect_event("unsigned__AAAAA=")
    assert invoke(unsigned) == {"statusCode": 403}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"action": "sendPublic", "message": "\\ud83d"}', "INVALID_MESSAGE"),
        ("[" * 3000 + "]" * 3000, "INVALID_JSON"),
        ('{"action": "sendPublic", "message": ' + "[" * 3000 + "]" * 3000 + "}", "INVALID_JSON"),
        ('{"action": "sendPrivate", "to": "' + "x" * 5000 + '", "message": "hi"}', None),
        ('{"action": "sendPrivate", "to": "\\ud83d", "message": "hi"}', "UNKNOWN_RECIPIENT"),
        ('{"action": "setName", "name": "\\udc00"}', "INVALID_NAME"),
    ],
)
def test_hostile_frames_get_a_clear_error_never_internal(api, raw, code):
    (alice,) = join(api, "Alice")
    assert send(alice, raw) == {"statusCode": 200}
    error = error_of(api, alice)
    assert error["code"] == (code or "UNKNOWN_RECIPIENT")
    assert len(json.dumps(error)) < 500


def test_a_recipient_longer_than_any_name_is_unknown_without_a_read(api, monkeypatch):
    (alice,) = join(api, "Alice")
    store = wiring.chat_service()._store
    monkeypatch.setattr(store, "find_member", lambda key: pytest.fail("looked up"))
    send(alice, {"action": "sendPrivate", "to": "x" * 33, "message": "hi"})
    assert error_of(api, alice)["code"] == "UNKNOWN_RECIPIENT"


def test_a_private_message_to_a_decomposed_name_reaches_the_composed_owner(api):
    # GIVEN Alicé (composed) in the chat; an impostor cannot take the decomposed form
    owner, other = join(api, "Alic\u00e9", "Bob")
    connect("impostor__AAAAA=")
    send("impostor__AAAAA=", {"action": "setName", "name": "Alice\u0301"})
    assert error_of(api, "impostor__AAAAA=")["code"] == "NAME_TAKEN"
    # WHEN Bob writes to the decomposed spelling THEN the owner receives it
    send(other, {"action": "sendPrivate", "to": "Alice\u0301", "message": "hi"})
    assert api.take(owner)[0]["privateMessage"] == "Bob: hi"
    assert api.take("impostor__AAAAA=") == []


def test_connect_picks_the_chat_subprotocol_when_offered_and_never_echoes_a_token(api):
    event = connect_event("subproto__AAAAA=")
    event["headers"]["Sec-WebSocket-Protocol"] = "chat, eyJhbGciOiJSUzI1NiJ9.e30.sig"
    assert invoke(event) == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat"}}
    plain = connect_event("plain_____AAAAA=")
    assert invoke(plain) == {"statusCode": 200}


# --- protocol v1.1 ------------------------------------------------------------------------


def test_errors_carry_the_frames_id(api):
    (alice,) = join(api, "Alice")
    send(alice, {"action": "sendPublic", "message": "", "id": "m-1"})
    assert error_of(api, alice) == {
        "code": "INVALID_MESSAGE",
        "message": "A message must not be empty.",
        "action": "sendPublic",
        "id": "m-1",
    }


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", 7, ["m1"], "caf\u00e9"])
def test_a_bad_id_is_refused_with_invalid_id(api, bad):
    (alice,) = join(api, "Alice")
    send(alice, {"action": "sendPublic", "message": "hi", "id": bad})
    error = error_of(api, alice)
    assert error["code"] == "INVALID_ID"
    assert "id" not in error


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_a_bad_since_is_refused(api, bad):
    (alice,) = join(api, "Alice")
    send(alice, {"action": "history", "since": bad, "id": "h1"})
    assert error_of(api, alice)["code"] == "INVALID_ID"


def test_ping_with_an_id_is_acknowledged_and_without_is_silent(api):
    (alice,) = join(api, "Alice")
    send(alice, {"action": "ping"})
    send(alice, {"action": "ping", "id": "k1"})
    assert api.take(alice) == [{"ack": "ping", "id": "k1"}]


def test_history_through_the_handler_returns_what_came_after_since(api):
    alice, bob = join(api, "Alice", "Bob")
    send(alice, {"action": "sendPublic", "message": "one"})
    send(alice, {"action": "sendPublic", "message": "two"})
    first = api.take(bob)[0]
    api.clear()
    send(bob, {"action": "history", "since": first["seq"], "id": "h1"})
    (frame,) = api.take(bob)
    assert [m["text"] for m in frame["history"]] == ["two"]
    assert (frame["final"], frame["complete"], frame["id"]) == (True, True, "h1")


def test_a_resend_after_a_lost_ack_is_delivered_once(api):
    alice, bob = join(api, "Alice", "Bob")
    for _ in range(3):
        send(alice, {"action": "sendPublic", "message": "once", "id": "dup-1"})
    assert [f["text"] for f in api.take(bob)] == ["once"]
    acks = api.take(alice)
    assert len(acks) == 3
    assert all(a == acks[0] for a in acks)


# --- the invocation's deadline -----------------------------------------------------------


class AlmostOutOfTime(LambdaContext):
    """A context whose invocation has less time left than the deadline's margin."""

    def get_remaining_time_in_millis(self) -> int:
        return 900


def test_posts_are_not_started_after_the_deadline_the_lambda_context_gives(api):
    # GIVEN Alice and Bob in the chat
    alice, bob = join(api, "Alice", "Bob")
    # WHEN Alice's message arrives in an invocation with under a second left
    started = time.monotonic()
    event = message_event(alice, {"action": "sendPublic", "message": "late"})
    assert handler.lambda_handler(event, AlmostOutOfTime()) == {"statusCode": 200}
    # THEN the handler returns at once, with no post made (the message is in the history,
    # where the members recover it)
    assert time.monotonic() - started < 2.0
    assert api.take(bob) == [] and api.take(alice) == []
    send(bob, {"action": "history", "id": "h"})
    (history,) = api.take(bob)
    assert [m["text"] for m in history["history"]] == ["late"]


def test_with_time_left_the_same_message_is_posted(api):
    alice, bob = join(api, "Alice", "Bob")
    send(alice, {"action": "sendPublic", "message": "in time"})
    assert [f["text"] for f in api.take(bob)] == ["in time"]
