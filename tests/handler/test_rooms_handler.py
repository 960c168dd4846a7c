"""Protocol v2 through the Lambda handler (docs/rooms-design.md §3): real event shapes in,
frames out, on the in-memory store. Each frame and error example of §3 is a test here, and
v1 clients in the lobby see exactly today's frames beside v2 ones."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import handler
from chat.frames import DELETED_TEXT
from chat.rooms import direct_room_id
from chat.service import ChatService
from chat.settings import Limits, Retention, Rooms, Settings
from chat.store import DynamoChatStore
from tests.support.aws import TABLE
from tests.support.events import LambdaContext, connect_event, disconnect_event, message_event
from tests.support.fakes import FakeClock, InMemoryStore, RecordingNotifier

TTL = 10_800
ROOMY = Limits(message_burst=1000, name_burst=100, max_room_size=1000)
# The stack's routes (infra/websocket_api.py): API Gateway picks one from `action`.
ROUTES = {
    "setName",
    "sendPublic",
    "sendPrivate",
    "joinRoom",
    "leaveRoom",
    "createRoom",
    "invite",
    "typing",
    "editMessage",
    "deleteMessage",
    "moderate",
}
V1_ACTIONS = "Valid actions: setName, sendPublic, sendPrivate, ping, history."
Frame = dict[str, Any]


def client_key(name: str) -> str:
    return f"key-of-{name}".ljust(16, "x")


class Stack:
    """The handler over a ChatService on the in-memory store (or, given a moto client, on
    DynamoChatStore); each call is one event."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, db: Any = None, **options: Any) -> None:
        self.clock = FakeClock()
        self.store: Any = (
            InMemoryStore(self.clock)
            if db is None
            else DynamoChatStore(db, TABLE, clock=self.clock)
        )
        self.notifier = RecordingNotifier()
        self.monkeypatch = monkeypatch
        self.configure(**options)
        self.serial = 0

    def configure(
        self,
        *,
        limits: Limits = ROOMY,
        rooms: Rooms | None = None,
        retention: Retention | None = None,
        sign_in: bool = False,
    ) -> None:
        service = ChatService(
            self.store,
            self.notifier,
            connection_ttl_seconds=TTL,
            limits=limits,
            retention=retention or Retention(),
            rooms=rooms or Rooms(),
            clock=self.clock,
        )
        config = Settings(
            table_name="chat",
            callback_url="http://127.0.0.1:1",
            allowed_origins=("*",),
            sign_in_required=sign_in,
            limits=limits,
        )
        self.monkeypatch.setattr(handler, "chat_service", lambda: service)
        self.monkeypatch.setattr(handler, "settings", lambda: config)

    def connect(
        self,
        cid: str,
        *,
        sub: str | None = None,
        groups: str | None = None,
        source_ip: str | None = None,
    ) -> None:
        """Each connection from its own address unless `source_ip` says otherwise."""
        self.serial += 1
        event = connect_event(cid, source_ip=source_ip or f"198.51.100.{self.serial}")
        if sub is not None:
            context: dict[str, str] = {"name": cid.removesuffix("="), "sub": sub}
            if groups is not None:
                context["groups"] = groups
            event["requestContext"]["authorizer"] = context
        assert handler.lambda_handler(event, LambdaContext())["statusCode"] == 200

    def send(self, cid: str, body: Frame | str, route: str | None = None) -> None:
        if route is None and isinstance(body, dict):
            action = body.get("action")
            route = action if isinstance(action, str) and action in ROUTES else "$default"
        handler.lambda_handler(message_event(cid, body, route), LambdaContext())

    def disconnect(self, cid: str) -> None:
        handler.lambda_handler(disconnect_event(cid), LambdaContext())

    def v2(
        self,
        name: str,
        *,
        key: bool = True,
        sub: str | None = None,
        groups: str | None = None,
        source_ip: str | None = None,
    ):
        """A v2 client named `name` (with a clientKey unless `key` is False)."""
        cid = f"{name}="
        self.connect(cid, sub=sub, groups=groups, source_ip=source_ip)
        body: Frame = {"action": "setName", "name": name, "protocol": 2}
        if key and sub is None:
            body["clientKey"] = client_key(name)
        self.send(cid, body)
        self.notifier.clear()
        return cid

    def v1(self, name: str, client_key: str | None = None) -> str:
        cid = f"{name}="
        self.connect(cid)
        body: Frame = {"action": "setName", "name": name}
        if client_key:
            body["clientKey"] = client_key
        self.send(cid, body)
        self.notifier.clear()
        return cid

    def take(self, cid: str) -> list[Frame]:
        return self.notifier.take(cid)

    def error(self, cid: str) -> Frame:
        got = self.take(cid)
        assert len(got) == 1, got
        error: Frame = got[0]["error"]
        return error

    def join(self, cid: str, room: str) -> None:
        self.send(cid, {"action": "joinRoom", "room": room})


@pytest.fixture(params=["memory", "dynamo"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_stack(monkeypatch: pytest.MonkeyPatch, store_kind: str, request: pytest.FixtureRequest):
    """Stacks on the store kind: the in-memory one, and DynamoChatStore on moto."""
    db = request.getfixturevalue("db") if store_kind == "dynamo" else None
    return lambda **options: Stack(monkeypatch, db, **options)


@pytest.fixture
def stack(make_stack) -> Stack:
    return make_stack()


def in_room(stack: Stack, room: str, *names: str) -> list[str]:
    """v2 clients that joined `room`, in order; what they were sent is forgotten."""
    ids = []
    for name in names:
        cid = stack.v2(name)
        stack.join(cid, room)
        ids.append(cid)
    stack.notifier.clear()
    return ids


def without(frame: Frame, *keys: str) -> Frame:
    return {k: v for k, v in frame.items() if k not in keys}


# --- negotiation ------------------------------------------------------------------------


def test_set_name_with_protocol_2_is_acknowledged_with_the_protocol_and_joins_no_room(stack):
    (bob,) = [stack.v1("Bob")]
    stack.connect("alice=")
    stack.send(
        "alice=",
        {
            "action": "setName",
            "name": "Alice",
            "protocol": 2,
            "clientKey": "q9Xc3q9Xc3q9Xc3q",
            "id": "n1",
        },
    )
    assert stack.take("alice=") == [{"ack": "setName", "id": "n1", "name": "Alice", "protocol": 2}]
    assert stack.take(bob) == []  # the lobby is not told: Alice is in no room
    assert stack.store.get_connection("alice=").protocol == 2


@pytest.mark.parametrize("protocol", [3, 0, "2", True, 2.0, [2]])
def test_a_protocol_other_than_1_or_2_is_unsupported_and_says_which_are(stack, protocol):
    stack.connect("alice=")
    stack.send("alice=", {"action": "setName", "name": "Alice", "protocol": protocol})
    assert stack.error("alice=") == {
        "code": "UNSUPPORTED_PROTOCOL",
        "message": "This server speaks protocol 1 and 2.",
        "action": "setName",
        "supported": [1, 2],
    }
    assert stack.store.get_connection("alice=").name is None


def test_protocol_1_is_todays_join_of_the_lobby_with_the_protocol_in_the_ack(stack):
    stack.connect("alice=")
    stack.send("alice=", {"action": "setName", "name": "Alice", "protocol": 1, "id": "n1"})
    assert stack.take("alice=") == [
        {"members": ["Alice"]},
        {"systemMessage": "Alice has joined the chat", "event": "join", "name": "Alice"},
        {"ack": "setName", "id": "n1", "name": "Alice", "protocol": 1},
    ]


def test_a_v1_connection_sending_a_v2_action_gets_unknown_action_naming_the_v1_actions(stack):
    alice = stack.v1("Alice")
    stack.send(alice, {"action": "joinRoom", "room": "dev", "id": "j1"})
    assert stack.error(alice) == {
        "code": "UNKNOWN_ACTION",
        "message": f"Unknown action (action). {V1_ACTIONS}",
        "action": None,
        "id": "j1",
    }
    stack.send(alice, {"action": "listRooms", "id": "r1"})
    assert stack.error(alice)["code"] == "UNKNOWN_ACTION"


def test_a_v2_connection_is_told_the_v2_actions_and_its_routed_actions_keep_their_routes(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "fly", "id": "x1"})
    error = stack.error(alice)
    assert error["code"] == "UNKNOWN_ACTION"
    assert "joinRoom" in error["message"] and "markRead" in error["message"]
    stack.send(alice, {"action": "joinRoom", "room": "dev"}, route="$default")
    assert stack.error(alice)["code"] == "INVALID_JSON"


@pytest.mark.parametrize("action", [{"room": "dev"}, [], ["joinRoom"], 2])
def test_an_action_that_is_not_a_string_is_unknown_for_v1_and_v2(stack, action):
    for cid in (stack.v1("Bob"), stack.v2("Alice")):
        stack.send(cid, {"action": action, "id": "x1"})
        assert stack.error(cid)["code"] == "UNKNOWN_ACTION"


def test_a_rename_keeps_the_protocol(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "setName", "name": "Alicia", "protocol": 1, "id": "n2"})
    assert stack.take(alice) == [{"ack": "setName", "id": "n2", "name": "Alicia", "protocol": 2}]
    assert stack.store.get_connection(alice).protocol == 2


# --- joinRoom, createRoom, leaveRoom ------------------------------------------------------


def test_join_room_creates_a_public_room_and_answers_joined_list_history_notice(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "joinRoom", "room": "dev", "id": "j1"})
    assert stack.take(alice) == [
        {
            "joined": "dev",
            "room": "dev",
            "kind": "public",
            "count": 1,
            "seq": 0,
            "lastRead": 0,
            "role": "creator",
            "id": "j1",
        },
        {"members": ["Alice"], "room": "dev"},
        {"history": [], "room": "dev", "final": True, "complete": True},
        {
            "systemMessage": "Alice has joined dev",
            "event": "join",
            "name": "Alice",
            "room": "dev",
        },
    ]


def test_the_others_in_the_room_get_the_member_list_and_the_join_notice(stack):
    (alice,) = in_room(stack, "dev", "Alice")
    bob = stack.v2("Bob")
    stack.join(bob, "dev")
    notice = {"systemMessage": "Bob has joined dev", "event": "join", "name": "Bob", "room": "dev"}
    assert stack.take(alice) == [{"members": ["Alice", "Bob"], "room": "dev"}, notice]
    assert stack.take(bob)[0]["count"] == 2


def test_above_the_threshold_the_joiner_gets_list_parts_and_the_others_presence(make_stack):
    stack = make_stack(limits=replace(ROOMY, member_list_threshold=1))
    bob = stack.v1("Bob")
    (alice,) = in_room(stack, "lobby", "Alice")
    carol = stack.v2("Carol")
    stack.join(carol, "lobby")
    assert stack.take(alice) == [
        {"presence": {"count": 3, "joined": ["Carol"], "left": []}, "room": "lobby"},
        {
            "systemMessage": "Carol has joined lobby",
            "event": "join",
            "name": "Carol",
            "room": "lobby",
        },
    ]
    assert stack.take(bob) == [
        {"systemMessage": "Carol has joined the chat", "event": "join", "name": "Carol"}
    ]
    assert stack.take(carol)[1] == {
        "memberList": ["Alice", "Bob", "Carol"],
        "room": "lobby",
        "part": 1,
        "parts": 1,
    }
    stack.disconnect(carol)
    assert stack.take(alice)[0] == {
        "presence": {"count": 2, "joined": [], "left": ["Carol"]},
        "room": "lobby",
    }


def test_a_look_alike_of_a_room_name_joins_that_room(stack):
    (alice,) = in_room(stack, "dev", "Alice")
    bob = stack.v2("Bob")
    stack.send(bob, {"action": "joinRoom", "room": "DEV", "id": "j1"})
    assert stack.take(bob)[0]["joined"] == "dev"
    assert [f.get("name") for f in stack.take(alice)] == [None, "Bob"]


@pytest.mark.parametrize(
    ("room", "message"),
    [
        ("dev#1", 'A room name must not contain "#" or a look-alike of it.'),
        (None, "Say which room (room)."),
    ],
)
def test_a_room_name_that_breaks_the_rules_is_invalid_room(stack, room, message):
    alice = stack.v2("Alice")
    body: Frame = {"action": "joinRoom", "id": "j1"}
    if room is not None:
        body["room"] = room
    stack.send(alice, body)
    assert stack.error(alice) == {
        "code": "INVALID_ROOM",
        "message": message,
        "action": "joinRoom",
        "id": "j1",
    }


def test_create_room_makes_a_private_room_that_others_cannot_find(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "createRoom", "room": "ops", "id": "c1"})
    assert stack.take(alice)[0] == {
        "joined": "ops",
        "room": "ops",
        "kind": "private",
        "count": 1,
        "seq": 0,
        "lastRead": 0,
        "role": "creator",
        "id": "c1",
    }
    bob = stack.v2("Bob")
    stack.send(bob, {"action": "joinRoom", "room": "ops", "id": "j1"})
    assert stack.error(bob) == {
        "code": "ROOM_NOT_FOUND",
        "message": "There is no room by that name (room).",
        "action": "joinRoom",
        "id": "j1",
    }
    stack.send(bob, {"action": "sendPublic", "room": "ops", "message": "hi", "id": "p1"})
    assert stack.error(bob)["code"] == "ROOM_NOT_FOUND"  # never "not in room": it is hidden


@pytest.mark.parametrize("room", ["dev", "Dev", "lobby", "LOBBY"])
def test_create_room_of_a_taken_name_or_look_alike_is_room_exists(stack, room):
    in_room(stack, "dev", "Alice")
    bob = stack.v2("Bob")
    stack.send(bob, {"action": "createRoom", "room": room, "id": "c1"})
    assert stack.error(bob) == {
        "code": "ROOM_EXISTS",
        "message": "A room with that name, or one like it, exists.",
        "action": "createRoom",
        "id": "c1",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "direct"},
        {"kind": "secret"},
        {"group": "sre"},  # a group needs sign-in
        {"room": "@" + "0" * 32},
    ],
)
def test_create_room_refuses_a_kind_a_group_without_sign_in_or_a_direct_id(stack, body):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "createRoom", "room": "ops", "id": "c1", **body})
    assert stack.error(alice)["code"] == "INVALID_ROOM"


def test_a_private_room_admits_by_the_group_of_the_sign_in(make_stack):
    stack = make_stack(sign_in=True)
    alice = stack.v2("Alice", sub="sub-alice", groups="sre, dev")
    stack.send(alice, {"action": "createRoom", "room": "ops", "group": "sre", "id": "c1"})
    assert stack.take(alice)[0]["kind"] == "private"
    bob = stack.v2("Bob", sub="sub-bob", groups="dev,sre")
    stack.send(bob, {"action": "joinRoom", "room": "ops", "id": "j1"})
    joined = stack.take(bob)[0]
    assert (joined["joined"], joined["kind"], joined["group"]) == ("ops", "private", "sre")
    carol = stack.v2("Carol", sub="sub-carol", groups="dev")
    stack.send(carol, {"action": "joinRoom", "room": "ops", "id": "j1"})
    assert stack.error(carol)["code"] == "ROOM_NOT_FOUND"
    assert stack.store.get_connection(bob).groups == ("dev", "sre")


def test_leave_room_answers_left_and_the_others_get_the_notice_and_the_list(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    stack.send(bob, {"action": "leaveRoom", "room": "dev", "id": "l1"})
    assert stack.take(bob) == [{"left": "dev", "room": "dev", "id": "l1"}]
    assert stack.take(alice) == [
        {"systemMessage": "Bob has left dev", "event": "leave", "name": "Bob", "room": "dev"},
        {"members": ["Alice"], "room": "dev"},
    ]
    stack.send(bob, {"action": "leaveRoom", "room": "dev", "id": "l2"})
    assert stack.error(bob) == {
        "code": "NOT_IN_ROOM",
        "message": "Join the room before sending to it.",
        "action": "leaveRoom",
        "id": "l2",
    }
    stack.send(bob, {"action": "leaveRoom", "room": "nowhere", "id": "l3"})
    assert stack.error(bob)["code"] == "ROOM_NOT_FOUND"


def test_a_join_beyond_the_rooms_per_connection_is_too_many_rooms(make_stack):
    stack = make_stack(rooms=Rooms(max_rooms_per_connection=2))
    alice = stack.v2("Alice")
    stack.join(alice, "a1")
    stack.join(alice, "a2")
    stack.take(alice)
    stack.send(alice, {"action": "joinRoom", "room": "a3", "id": "j2"})
    assert stack.error(alice) == {
        "code": "TOO_MANY_ROOMS",
        "message": "You are in 2 rooms; leave one first.",
        "action": "joinRoom",
        "id": "j2",
    }


def test_a_join_past_the_room_size_is_room_full(make_stack):
    stack = make_stack(limits=replace(ROOMY, max_room_size=1))
    in_room(stack, "dev", "Alice")
    bob = stack.v2("Bob")
    stack.send(bob, {"action": "joinRoom", "room": "dev", "id": "j1"})
    assert stack.error(bob)["code"] == "ROOM_FULL"


def test_creating_beyond_the_creators_bucket_is_room_limit_with_the_wait(make_stack):
    stack = make_stack(rooms=Rooms(max_rooms_per_creator=1))
    alice = stack.v2("Alice")
    stack.join(alice, "first")
    stack.take(alice)
    stack.send(alice, {"action": "joinRoom", "room": "second", "id": "j3"})
    error = stack.error(alice)
    assert without(error, "retryAfterMs") == {
        "code": "ROOM_LIMIT",
        "message": "You have created too many rooms recently.",
        "action": "joinRoom",
        "id": "j3",
    }
    assert error["retryAfterMs"] > 3_600_000
    stack.join(alice, "first")  # joining an existing room takes no token
    assert "joined" in stack.take(alice)[0]


def test_an_address_creates_as_many_rooms_as_ten_people(make_stack):
    # GIVEN one room per person, and eleven people behind one address (an office's NAT)
    stack = make_stack(rooms=Rooms(max_rooms_per_creator=1))
    people = [stack.v2(f"P{n}", source_ip="203.0.113.9") for n in range(11)]
    # WHEN each creates a room
    codes = []
    for n, person in enumerate(people):
        stack.send(person, {"action": "joinRoom", "room": f"r{n}", "id": f"j{n}"})
        codes.append(next(f.get("error", {}).get("code") for f in stack.take(person)))
    # THEN ten get theirs and the eleventh waits for the address's bucket
    assert codes == [None] * 10 + ["ROOM_LIMIT"]


def test_the_stack_wide_room_cap_is_room_limit(make_stack):
    stack = make_stack(rooms=Rooms(max_rooms=1))
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.join(alice, "first")
    stack.send(bob, {"action": "createRoom", "room": "second", "id": "c1"})
    assert stack.error(bob)["code"] == "ROOM_LIMIT"


# --- messages ---------------------------------------------------------------------------


def test_send_public_in_a_room_reaches_its_members_only(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    (carol,) = in_room(stack, "ops", "Carol")
    stack.send(alice, {"action": "sendPublic", "room": "dev", "message": "hi", "id": "p1"})
    (to_bob,) = stack.take(bob)
    assert without(to_bob, "ts", "messageId") == {
        "publicMessage": "Alice: hi",
        "room": "dev",
        "from": "Alice",
        "text": "hi",
        "seq": 1,
        "prev": 0,
    }
    assert stack.take(alice) == [{**to_bob, "id": "p1"}]
    assert stack.take(carol) == []


def test_send_public_needs_a_room_in_v2_and_membership(stack):
    (alice,) = in_room(stack, "dev", "Alice")
    stack.send(alice, {"action": "sendPublic", "message": "hi", "id": "p1"})
    assert stack.error(alice)["code"] == "INVALID_ROOM"
    (bob,) = in_room(stack, "ops", "Bob")
    stack.send(bob, {"action": "sendPublic", "room": "dev", "message": "hi", "id": "p1"})
    assert stack.error(bob) == {
        "code": "NOT_IN_ROOM",
        "message": "Join the room before sending to it.",
        "action": "sendPublic",
        "id": "p1",
    }


def test_the_room_is_checked_before_the_message(stack):
    (bob,) = in_room(stack, "ops", "Bob")
    stack.send(bob, {"action": "sendPublic", "room": "dev", "message": "", "id": "p1"})
    assert stack.error(bob)["code"] == "ROOM_NOT_FOUND"
    stack.send(bob, {"action": "sendPublic", "room": "ops", "message": "", "id": "p1"})
    assert stack.error(bob)["code"] == "INVALID_MESSAGE"


def test_history_of_a_room_needs_the_room_and_gives_its_messages(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    for text in ("one", "two"):
        stack.send(alice, {"action": "sendPublic", "room": "dev", "message": text})
    stack.notifier.clear()
    stack.send(bob, {"action": "history", "room": "dev", "since": 1, "id": "h2"})
    (reply,) = stack.take(bob)
    assert [m["text"] for m in reply["history"]] == ["two"]
    assert without(reply, "history") == {"room": "dev", "final": True, "complete": True, "id": "h2"}
    stack.send(bob, {"action": "history", "id": "h3"})
    assert stack.error(bob)["code"] == "INVALID_ROOM"
    stack.send(bob, {"action": "history", "room": "elsewhere", "id": "h4"})
    assert stack.error(bob)["code"] == "ROOM_NOT_FOUND"


def test_a_rejoin_gets_the_messages_after_its_last_read(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    stack.send(alice, {"action": "sendPublic", "room": "dev", "message": "read"})
    stack.send(bob, {"action": "markRead", "room": "dev", "seq": 1})
    stack.send(bob, {"action": "leaveRoom", "room": "dev"})
    stack.send(alice, {"action": "sendPublic", "room": "dev", "message": "unread"})
    stack.notifier.clear()
    stack.join(bob, "dev")
    joined, _, history, _ = stack.take(bob)
    assert (joined["seq"], joined["lastRead"]) == (2, 1)
    assert [m["text"] for m in history["history"]] == ["unread"]


# --- v1 and v2 in the lobby ---------------------------------------------------------------


def test_v1_members_of_the_lobby_see_todays_frames_when_a_v2_client_joins_and_talks(stack):
    bob = stack.v1("Bob")
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "joinRoom", "room": "lobby", "id": "j1"})
    assert stack.take(bob) == [
        {"members": ["Alice", "Bob"]},
        {"systemMessage": "Alice has joined the chat", "event": "join", "name": "Alice"},
    ]
    mine = stack.take(alice)
    assert mine[1] == {"members": ["Alice", "Bob"], "room": "lobby"}
    stack.send(alice, {"action": "sendPublic", "room": "lobby", "message": "hi", "id": "p1"})
    (to_bob,) = stack.take(bob)
    assert "room" not in to_bob and "id" not in to_bob
    assert (to_bob["publicMessage"], to_bob["prev"]) == ("Alice: hi", 0)
    assert stack.take(alice)[0]["room"] == "lobby"


def test_v2_members_of_the_lobby_get_v1_events_with_the_room(stack):
    alice = stack.v2("Alice")
    stack.join(alice, "lobby")
    stack.take(alice)
    bob = stack.v1("Bob")
    assert stack.take(alice) == []  # v1() cleared: look again with a fresh one
    carol_cid = "Carol="
    stack.connect(carol_cid)
    stack.send(carol_cid, {"action": "setName", "name": "Carol"})
    assert stack.take(alice) == [
        {"members": ["Alice", "Bob", "Carol"], "room": "lobby"},
        {
            "systemMessage": "Carol has joined lobby",
            "event": "join",
            "name": "Carol",
            "room": "lobby",
        },
    ]
    stack.send(bob, {"action": "sendPublic", "message": "hello"})
    (message,) = stack.take(alice)
    assert (message["room"], message["text"]) == ("lobby", "hello")
    stack.disconnect(bob)
    assert stack.take(alice)[0] == {
        "systemMessage": "Bob has left lobby",
        "event": "leave",
        "name": "Bob",
        "room": "lobby",
    }
    assert stack.take(carol_cid)[-2] == {
        "systemMessage": "Bob has left the chat",
        "event": "leave",
        "name": "Bob",
    }


def test_v1_history_of_the_lobby_shows_edits_as_messages_and_never_events(stack):
    alice = stack.v2("Alice")
    stack.join(alice, "lobby")
    for text in ("one", "two"):
        stack.send(alice, {"action": "sendPublic", "room": "lobby", "message": text})
    first, second = [f for f in stack.take(alice) if "publicMessage" in f]
    edit = {"room": "lobby", "messageId": first["messageId"], "seq": first["seq"]}
    stack.send(alice, {"action": "editMessage", **edit, "message": "uno"})
    delete = {"room": "lobby", "messageId": second["messageId"], "seq": second["seq"]}
    stack.send(alice, {"action": "deleteMessage", **delete})
    stack.send(alice, {"action": "sendPublic", "room": "lobby", "message": "three"})
    bob = stack.v1("Bob")
    stack.send(bob, {"action": "history", "id": "h1"})
    (reply,) = stack.take(bob)
    assert [(m["text"], m["seq"], m["prev"]) for m in reply["history"]] == [
        ("uno", 1, 0),
        (DELETED_TEXT, 2, 1),
        ("three", 5, 2),
    ]
    assert reply["history"][1]["deleted"] is True
    assert all("room" not in m and "prevEvent" not in m for m in reply["history"])
    stack.send(alice, {"action": "history", "room": "lobby", "id": "h2"})
    (v2_reply,) = stack.take(alice)
    kinds = [next(iter(m)) for m in v2_reply["history"]]
    assert kinds == [
        "publicMessage",
        "messageDeleted",
        "messageEdited",
        "messageDeleted",
        "publicMessage",
    ]
    assert v2_reply["history"][-1]["prev"] == 4  # v2 chains every event
    assert v2_reply["history"][0]["edited"] is True


# --- typing -------------------------------------------------------------------------------


def test_typing_goes_to_the_other_v2_members_and_is_never_acknowledged(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    stack.send(alice, {"action": "typing", "room": "dev"})
    assert stack.take(bob) == [
        {"typing": "Alice", "room": "dev", "ts": int(stack.clock.now * 1000)}
    ]
    assert stack.take(alice) == []


def test_typing_faster_than_the_interval_is_dropped_without_an_error(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    stack.send(alice, {"action": "typing", "room": "dev"})
    stack.send(alice, {"action": "typing", "room": "dev"})
    assert len(stack.take(bob)) == 1
    assert stack.take(alice) == []
    stack.clock.now += Rooms().typing_interval_seconds
    stack.send(alice, {"action": "typing", "room": "dev"})
    assert len(stack.take(bob)) == 1


def test_a_typing_flood_still_counts_strikes_and_closes_the_connection(make_stack):
    stack = make_stack(limits=replace(ROOMY, rate_limit_strikes=3))
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    for _ in range(5):
        stack.send(alice, {"action": "typing", "room": "dev"})
    assert alice in stack.notifier.closed
    assert stack.take(alice) == []
    assert len(stack.take(bob)) == 1


def test_v1_members_of_the_lobby_never_see_typing(stack):
    bob = stack.v1("Bob")
    alice = stack.v2("Alice")
    stack.join(alice, "lobby")
    stack.notifier.clear()
    stack.send(alice, {"action": "typing", "room": "lobby"})
    assert stack.take(bob) == []


def test_typing_in_a_room_not_joined_is_not_in_room(stack):
    in_room(stack, "dev", "Alice")
    bob = stack.v2("Bob")
    stack.send(bob, {"action": "typing", "room": "dev"})
    assert stack.error(bob)["code"] == "NOT_IN_ROOM"


# --- edits and deletes ----------------------------------------------------------------------


def sent(stack: Stack, cid: str, room: str, text: str) -> Frame:
    stack.send(cid, {"action": "sendPublic", "room": room, "message": text})
    (mine,) = [f for f in stack.take(cid) if "publicMessage" in f]
    return mine


def test_edit_message_sends_the_event_with_its_own_seq_and_acknowledges(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    message = sent(stack, alice, "dev", "fxied")
    stack.take(bob)
    mid = message["messageId"]
    stack.send(
        alice,
        {
            "action": "editMessage",
            "room": "dev",
            "messageId": mid,
            "seq": 1,
            "message": "fixed",
            "id": "e1",
        },
    )
    (event,) = stack.take(bob)
    assert without(event, "ts") == {
        "messageEdited": mid,
        "room": "dev",
        "of": 1,
        "from": "Alice",
        "text": "fixed",
        "seq": 2,
        "prev": 1,
    }
    assert stack.take(alice) == [
        event,
        {"ack": "editMessage", "id": "e1", "room": "dev", "seq": 2, "messageId": mid},
    ]


def test_delete_message_sends_the_event_and_history_holds_a_tombstone(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    message = sent(stack, alice, "dev", "oops")
    stack.take(bob)
    mid = message["messageId"]
    body = {"action": "deleteMessage", "room": "dev", "messageId": mid, "seq": 1, "id": "d1"}
    stack.send(alice, body)
    (event,) = stack.take(bob)
    assert without(event, "ts") == {
        "messageDeleted": mid,
        "room": "dev",
        "of": 1,
        "from": "Alice",
        "seq": 2,
        "prev": 1,
    }
    assert stack.take(alice)[-1] == {
        "ack": "deleteMessage",
        "id": "d1",
        "room": "dev",
        "seq": 2,
        "messageId": mid,
    }
    stack.send(bob, {"action": "history", "room": "dev", "id": "h1"})
    (reply,) = stack.take(bob)
    assert [(next(iter(m)), m["of"]) for m in reply["history"]] == [
        ("messageDeleted", 1),
        ("messageDeleted", 1),
    ]
    stack.send(alice, body)
    assert stack.error(alice)["code"] == "UNKNOWN_MESSAGE"  # already deleted


def test_only_the_author_may_change_a_message(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    message = sent(stack, alice, "dev", "mine")
    stack.take(bob)
    stack.send(
        bob,
        {
            "action": "deleteMessage",
            "room": "dev",
            "messageId": message["messageId"],
            "seq": 1,
            "id": "d1",
        },
    )
    assert stack.error(bob) == {
        "code": "NOT_YOURS",
        "message": "Only its author can change a message.",
        "action": "deleteMessage",
        "id": "d1",
    }


def test_a_message_older_than_the_edit_window_cannot_be_changed(stack):
    (alice,) = in_room(stack, "dev", "Alice")
    message = sent(stack, alice, "dev", "old")
    stack.clock.now += Rooms().edit_window_seconds
    body = {
        "action": "editMessage",
        "room": "dev",
        "messageId": message["messageId"],
        "seq": 1,
        "message": "new",
        "id": "e1",
    }
    stack.send(alice, body)
    assert stack.error(alice) == {
        "code": "EDIT_WINDOW_CLOSED",
        "message": "Messages can be changed for 15 minutes.",
        "action": "editMessage",
        "id": "e1",
    }


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"messageId": "0000000000000000"}, "UNKNOWN_MESSAGE"),
        ({"seq": 7}, "UNKNOWN_MESSAGE"),
        ({"seq": "1"}, "INVALID_ID"),
        ({"seq": -1}, "INVALID_ID"),
        ({"message": ""}, "INVALID_MESSAGE"),
        ({"room": "ops"}, "ROOM_NOT_FOUND"),
    ],
)
def test_an_edit_that_names_no_message_or_has_bad_fields_is_refused(stack, change, code):
    (alice,) = in_room(stack, "dev", "Alice")
    message = sent(stack, alice, "dev", "text")
    body = {
        "action": "editMessage",
        "room": "dev",
        "messageId": message["messageId"],
        "seq": 1,
        "message": "new",
        "id": "e1",
        **change,
    }
    stack.send(alice, body)
    assert stack.error(alice)["code"] == code


def test_v1_members_of_the_lobby_never_see_edit_events(stack):
    bob = stack.v1("Bob")
    alice = stack.v2("Alice")
    stack.join(alice, "lobby")
    message = sent(stack, alice, "lobby", "hi")
    stack.take(bob)
    stack.send(
        alice,
        {
            "action": "editMessage",
            "room": "lobby",
            "messageId": message["messageId"],
            "seq": message["seq"],
            "message": "hello",
        },
    )
    assert stack.take(bob) == []


# --- markRead, listRooms, invite -------------------------------------------------------------


def test_mark_read_is_acknowledged_and_never_moves_back(stack):
    (alice,) = in_room(stack, "dev", "Alice")
    stack.send(alice, {"action": "markRead", "room": "dev", "seq": 57, "id": "m1"})
    assert stack.take(alice) == [{"ack": "markRead", "id": "m1", "room": "dev", "seq": 57}]
    stack.send(alice, {"action": "markRead", "room": "dev", "seq": 3, "id": "m2"})
    assert stack.take(alice) == [{"ack": "markRead", "id": "m2", "room": "dev", "seq": 57}]
    stack.send(alice, {"action": "markRead", "room": "dev", "seq": 60})
    assert stack.take(alice) == []  # without an id, no answer


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"room": "nowhere", "seq": 1}, "ROOM_NOT_FOUND"),
        ({"room": "dev", "seq": 1.5}, "INVALID_ID"),
        ({"room": "dev"}, "INVALID_ID"),
        ({"seq": 1}, "INVALID_ROOM"),
    ],
)
def test_mark_read_refuses_an_unknown_room_or_a_seq_that_is_not_whole(stack, body, code):
    (alice,) = in_room(stack, "dev", "Alice")
    stack.send(alice, {"action": "markRead", "id": "m1", **body})
    assert stack.error(alice)["code"] == code


def test_list_rooms_gives_public_rooms_mine_with_unread_and_invitations(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    stack.send(alice, {"action": "createRoom", "room": "ops"})
    stack.send(alice, {"action": "invite", "room": "ops", "to": "Bob"})
    for text in ("a", "b", "c"):
        stack.send(alice, {"action": "sendPublic", "room": "dev", "message": text})
    stack.send(bob, {"action": "markRead", "room": "dev", "seq": 1})
    stack.notifier.clear()
    stack.send(bob, {"action": "listRooms", "id": "r1"})
    assert stack.take(bob) == [
        {
            "rooms": {
                "public": [{"room": "lobby", "kind": "public"}, {"room": "dev", "kind": "public"}],
                "mine": [{"room": "dev", "kind": "public", "lastRead": 1, "unread": 2}],
                "invited": [{"room": "ops", "from": "Alice"}],
            },
            "final": True,
            "complete": True,
            "id": "r1",
        }
    ]


def test_invite_grants_the_room_and_tells_the_invitee(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "createRoom", "room": "ops"})
    bob = stack.v2("Bob")
    stack.notifier.clear()
    stack.send(alice, {"action": "invite", "room": "ops", "to": "bob", "id": "i1"})
    assert stack.take(alice) == [{"ack": "invite", "id": "i1", "room": "ops", "to": "Bob"}]
    assert stack.take(bob) == [{"invited": "ops", "room": "ops", "from": "Alice"}]
    stack.send(bob, {"action": "joinRoom", "room": "ops", "id": "j1"})
    assert stack.take(bob)[0]["kind"] == "private"


@pytest.mark.parametrize("invitee", ["v1", "no key", "nobody"])
def test_invite_needs_a_v2_invitee_online_with_a_lasting_identity(stack, invitee):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "createRoom", "room": "ops"})
    if invitee == "v1":
        stack.v1("Bob", client_key="k" * 16)
    elif invitee == "no key":
        stack.v2("Bob", key=False)
    stack.notifier.clear()
    stack.send(alice, {"action": "invite", "room": "ops", "to": "Bob", "id": "i1"})
    assert stack.error(alice)["code"] == "UNKNOWN_RECIPIENT"


def test_invite_to_a_room_not_joined_is_not_in_room(stack):
    in_room(stack, "dev", "Alice")
    bob = stack.v2("Bob")
    stack.send(bob, {"action": "invite", "room": "dev", "to": "Alice", "id": "i1"})
    assert stack.error(bob)["code"] == "NOT_IN_ROOM"


# --- $disconnect and renames across rooms ---------------------------------------------------


def test_a_v2_disconnect_is_announced_in_each_of_its_rooms(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    (carol,) = in_room(stack, "ops", "Carol")
    stack.join(alice, "ops")
    stack.notifier.clear()
    stack.disconnect(alice)
    assert stack.take(bob) == [
        {"systemMessage": "Alice has left dev", "event": "leave", "name": "Alice", "room": "dev"},
        {"members": ["Bob"], "room": "dev"},
    ]
    assert stack.take(carol)[0]["systemMessage"] == "Alice has left ops"
    assert stack.store.memberships(alice) == []
    assert stack.store.find_member("alice") is None


def test_a_dead_v2_members_rename_to_a_dead_holders_name_removes_both_once(stack):
    """The v2 path of the consistency example (tests/adapters/test_consistency.py): the
    reclaim's leave notice finds the renaming member gone too and removes it, in its room."""
    alice, bob, mia = in_room(stack, "dev", "alice", "bob", "mia")
    stack.notifier.gone |= {alice, bob}
    stack.send(bob, {"action": "setName", "name": "Alice", "id": "n1"})
    assert stack.store.get_connection(alice) is None
    assert stack.store.get_connection(bob) is None
    assert [m.connection_id for m in stack.store.list_members("dev")] == [mia]
    left = [f["name"] for f in stack.take(mia) if f.get("event") == "leave"]
    assert left == ["alice", "bob"]


def test_a_v2_rename_is_told_in_every_room_with_the_ack_last(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    (carol,) = in_room(stack, "ops", "Carol")
    stack.join(alice, "ops")
    stack.notifier.clear()
    stack.send(alice, {"action": "setName", "name": "Alicia", "id": "n2"})
    renamed = {
        "systemMessage": "Alice is now known as Alicia",
        "event": "rename",
        "name": "Alicia",
        "previous": "Alice",
        "room": "dev",
    }
    assert stack.take(bob) == [{"members": ["Alicia", "Bob"], "room": "dev"}, renamed]
    assert stack.take(carol)[1] == {**renamed, "room": "ops"}
    mine = stack.take(alice)
    assert mine[-1] == {"ack": "setName", "id": "n2", "name": "Alicia"}
    assert len(mine) == 5


# --- direct rooms --------------------------------------------------------------------------


def test_send_private_between_lasting_v2_identities_is_a_direct_message_in_their_room(stack):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "hi!", "id": "p2"})
    room = direct_room_id(f"key#{client_key('Alice')}", f"key#{client_key('Bob')}")
    (to_bob,) = stack.take(bob)
    assert without(to_bob, "ts", "messageId") == {
        "directMessage": "Alice: hi!",
        "room": room,
        "from": "Alice",
        "to": "Bob",
        "text": "hi!",
        "seq": 1,
        "prev": 0,
    }
    (ack,) = stack.take(alice)
    assert without(ack, "ts") == {
        "ack": "sendPrivate",
        "id": "p2",
        "seq": 1,
        "messageId": to_bob["messageId"],
        "to": "Bob",
        "room": room,
    }
    stack.send(bob, {"action": "joinRoom", "room": room, "id": "j1"})
    joined, _, history, _ = stack.take(bob)
    assert (joined["kind"], joined["seq"], joined["lastRead"]) == ("direct", 1, 1)
    # nothing unread: the recent messages
    assert [m["directMessage"] for m in history["history"]] == ["Alice: hi!"]
    stack.send(bob, {"action": "history", "room": room, "since": 0, "id": "h1"})
    (reply,) = stack.take(bob)
    assert [m["text"] for m in reply["history"]] == ["hi!"]
    carol = stack.v2("Carol")
    stack.send(carol, {"action": "joinRoom", "room": room, "id": "j2"})
    assert stack.error(carol)["code"] == "ROOM_NOT_FOUND"


def test_send_public_in_a_joined_direct_room_is_a_direct_message_to_its_members(stack):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "first"})
    room = direct_room_id(f"key#{client_key('Alice')}", f"key#{client_key('Bob')}")
    for cid in (alice, bob):
        stack.join(cid, room)
    stack.notifier.clear()
    stack.send(bob, {"action": "sendPublic", "room": room, "message": "reply", "id": "p1"})
    (to_alice,) = stack.take(alice)
    assert without(to_alice, "ts", "messageId") == {
        "directMessage": "Bob: reply",
        "room": room,
        "from": "Bob",
        "to": "Alice",
        "text": "reply",
        "seq": 2,
        "prev": 1,
    }
    assert stack.take(bob) == [{**to_alice, "id": "p1"}]


def test_a_v1_recipient_of_a_direct_message_gets_todays_private_message(stack):
    bob = stack.v1("Bob", client_key="b" * 16)
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "hi!", "id": "p2"})
    (to_bob,) = stack.take(bob)
    assert "privateMessage" in to_bob and "room" not in to_bob
    assert "room" in stack.take(alice)[0]
    bob_seq = to_bob["seq"]
    assert bob_seq == 1  # a lobby seq


def test_private_messages_without_lasting_identities_are_unstored_as_today(stack):
    alice, bob = stack.v2("Alice", key=False), stack.v2("Bob")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "hi!", "id": "p2"})
    (to_bob,) = stack.take(bob)
    assert "privateMessage" in to_bob and "room" not in to_bob
    assert "room" not in stack.take(alice)[0]
    would_be = direct_room_id(f"conn#{alice}", f"key#{client_key('Bob')}")
    assert stack.store.room_meta(would_be) is None


def test_direct_rooms_off_keeps_private_messages_unstored(make_stack):
    stack = make_stack(rooms=Rooms(direct_rooms=False))
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "hi!"})
    assert "privateMessage" in stack.take(bob)[0]
    room = direct_room_id(f"key#{client_key('Alice')}", f"key#{client_key('Bob')}")
    assert stack.store.room_meta(room) is None


def direct_history(stack: Stack, room: str) -> tuple[list[str], bool]:
    """The texts the store keeps in a direct room's history (as v2 readers get them), and
    whether that history says it is complete."""
    kept, complete = stack.store.history(None, 100, 65_536, room=room, events=True)
    return [m["text"] for m in kept], complete


@pytest.mark.parametrize("message_id", ["p2", None], ids=["with-id", "without-id"])
def test_a_private_message_refused_as_unknown_recipient_leaves_no_copy_in_the_direct_room(
    stack, message_id
):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    room = direct_room_id(f"key#{client_key('Alice')}", f"key#{client_key('Bob')}")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "first"})
    stack.notifier.clear()
    stack.notifier.gone.add(bob)  # Bob's socket died; its $disconnect has not come
    lost: Frame = {"action": "sendPrivate", "to": "Bob", "message": "lost"}
    if message_id is not None:
        lost["id"] = message_id
    stack.send(alice, lost)
    assert stack.error(alice)["code"] == "UNKNOWN_RECIPIENT"
    assert direct_history(stack, room) == (["first"], True)
    # Bob is back: the next message chains to the last one kept, so no gap shows.
    stack.notifier.gone.discard(bob)
    bob = stack.v2("Bob")
    stack.send(alice, {"action": "sendPrivate", "to": "Bob", "message": "again"})
    (to_bob,) = stack.take(bob)
    assert (to_bob["text"], to_bob["prev"]) == ("again", 1)
    assert direct_history(stack, room) == (["first", "again"], True)
    stack.send(bob, {"action": "joinRoom", "room": room, "id": "j1"})
    stack.send(bob, {"action": "history", "room": room, "since": 0, "id": "h1"})
    reply = stack.take(bob)[-1]
    assert ([m["text"] for m in reply["history"]], reply["complete"]) == (["first", "again"], True)


def test_a_resend_of_a_refused_private_message_with_the_same_id_is_kept_once(stack):
    alice, bob = stack.v2("Alice"), stack.v2("Bob")
    room = direct_room_id(f"key#{client_key('Alice')}", f"key#{client_key('Bob')}")
    stack.notifier.gone.add(bob)
    message = {"action": "sendPrivate", "to": "Bob", "message": "hi!", "id": "p2"}
    stack.send(alice, message)
    assert stack.error(alice)["code"] == "UNKNOWN_RECIPIENT"
    stack.send(alice, message)  # Bob is still gone (pruned now): refused again
    assert stack.error(alice)["code"] == "UNKNOWN_RECIPIENT"
    assert direct_history(stack, room) == ([], True)
    stack.notifier.gone.discard(bob)
    bob = stack.v2("Bob")
    stack.send(alice, message)
    (to_bob,) = stack.take(bob)
    (ack,) = stack.take(alice)
    assert (ack["ack"], ack["id"], ack["messageId"]) == ("sendPrivate", "p2", to_bob["messageId"])
    stack.send(alice, message)  # delivered now: a resend only repeats the acknowledgement
    assert stack.take(alice) == [ack]
    assert stack.take(bob) == []
    assert direct_history(stack, room) == (["hi!"], True)


def test_error_frames_of_v2_actions_are_json_with_the_action_named(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "leaveRoom", "room": "dev", "id": "l1"})
    raw = stack.notifier.raw_frames(alice)[-1]
    assert json.loads(json.dumps(raw))["error"]["action"] == "leaveRoom"


@pytest.mark.parametrize("action", ["editMessage", "deleteMessage"])
def test_a_change_recovered_with_since_is_the_very_event_sent_live(stack, action):
    # GIVEN Bob saw Alice's message, then her edit (or delete) live
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    message = sent(stack, alice, "dev", "fxied")
    stack.take(bob)
    body = {"action": action, "room": "dev", "messageId": message["messageId"], "seq": 1}
    if action == "editMessage":
        body["message"] = "fixed"
    stack.send(alice, body)
    (live,) = stack.notifier.raw_frames(bob)  # as sent: with its eventId
    stack.take(bob)
    # WHEN he recovers everything after the message
    stack.send(bob, {"action": "history", "room": "dev", "since": 1, "id": "h1"})
    (reply,) = stack.notifier.raw_frames(bob)
    # THEN the event is the same frame, eventId included, so a client drops the repeat
    assert "eventId" in live
    assert live in reply["history"]


def test_a_reconnect_rejoins_all_its_rooms_at_once_and_churn_stays_at_the_rename_pace(stack):
    # GIVEN the default limits (a rename bucket of 3, one per 10 s; 10 rooms per connection),
    # and ten rooms that exist (a creator may make 5; creating is not what this is about)
    stack.configure(limits=Limits(message_burst=1000), rooms=Rooms(max_rooms_per_creator=10))
    alice = stack.v2("Alice")
    # WHEN a reconnected client rejoins ten rooms at once (its setName spent a name token)
    for n in range(10):
        stack.join(alice, f"room{n}")
    # THEN every join is answered, none refused
    frames = stack.take(alice)
    assert [f["joined"] for f in frames if "joined" in f] == [f"room{n}" for n in range(10)]
    assert [f for f in frames if "error" in f] == []
    # AND a rename still has its own bucket
    stack.send(alice, {"action": "setName", "name": "Alicia", "id": "n1"})
    assert [f for f in stack.take(alice) if "error" in f] == []
    # WHEN it then leaves and joins as fast as it can
    refused = []
    for n in range(6):
        stack.send(alice, {"action": "leaveRoom", "room": f"room{n}", "id": f"l{n}"})
        refused += [f["error"] for f in stack.take(alice) if "error" in f]
    # THEN two spare changes go through and the rest wait for the rename pace (10 s)
    assert [e["code"] for e in refused] == ["RATE_LIMITED"] * 4
    assert all(9_000 <= e["retryAfterMs"] <= 10_000 for e in refused)
