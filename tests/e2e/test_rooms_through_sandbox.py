"""Protocol v2 (rooms) end to end: real WebSocket clients, the sandbox running the
synthesized stack (its joinRoom, createRoom, invite, typing, editMessage and deleteMessage
routes; listRooms and markRead on $default), the real handler and DynamoDB."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.chat_client import ChatClient, Frame
from tests.support.rooms import room_chat_clients, settled_table_problems
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


@pytest.fixture
def connect(chat_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    """Chat clients on the session's sandbox; every room empty and the table consistent
    after each test."""
    yield from room_chat_clients(chat_sandbox)


def unique(prefix: str) -> str:
    """A room name no other test (nor an earlier run on this sandbox) used: rooms last."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def fresh_key() -> str:
    """A clientKey of its own: an identity's room-creation bucket (maxRoomsPerCreator) and
    its message ids outlive a test, so each test's people are new identities."""
    return f"e2e-{uuid.uuid4().hex}"


def v2(connect: Callable[[], ChatClient], name: str, key: str | None = None) -> ChatClient:
    client = connect()
    ack = client.join_v2(name, key or fresh_key())
    assert ack == {"ack": "setName", "id": ack["id"], "name": name, "protocol": 2}
    return client


def joined(client: ChatClient, room: str, **fields: object) -> Frame:
    frame = client.request("joinRoom", room=room, **fields)
    assert "joined" in frame, frame
    # the join ends with its own notice
    client.wait_for(lambda f: f.get("event") == "join" and f.get("room") == frame["room"])
    return frame


def said(client: ChatClient, room: str, text: str) -> Frame:
    copy = client.request("sendPublic", room=room, message=text)
    assert copy.get("text") == text, copy
    return copy


def test_v2_negotiation_and_a_public_room_the_lobby_never_sees(connect):
    lobbyist = connect().join("Lobbyist")
    room = unique("dev")
    # a protocol the server does not speak is refused, naming those it does
    refused = connect().request("setName", name="Future", protocol=3)["error"]
    assert (refused["code"], refused["supported"]) == ("UNSUPPORTED_PROTOCOL", [1, 2])
    # GIVEN Alice speaks protocol 2: her setName joins no room
    alice = v2(connect, "Alice")
    assert alice.quiet() == []
    # WHEN she joins a room nobody has made, it is made, public, with her in it
    ack = joined(alice, room)
    assert {k: ack[k] for k in ("joined", "room", "kind", "count")} == {
        "joined": room,
        "room": room,
        "kind": "public",
        "count": 1,
    }
    bob = v2(connect, "Bob")
    joined(bob, room)
    assert alice.wait_for(lambda f: "members" in f) == {"members": ["Alice", "Bob"], "room": room}
    notice = alice.wait_for(lambda f: f.get("event") == "join")
    assert notice == {
        "systemMessage": f"Bob has joined {room}",
        "event": "join",
        "name": "Bob",
        "room": room,
    }
    # THEN a message in the room reaches its members, with the room named
    copy = said(bob, room, "in the room")
    got = alice.wait_for(lambda f: "publicMessage" in f)
    assert got == {k: v for k, v in copy.items() if k != "id"}
    assert (got["room"], got["from"], got["prev"]) == (room, "Bob", copy["seq"] - 1)
    # AND the v1 client in the lobby saw nothing of any of it
    assert lobbyist.quiet() == []


def test_a_private_room_admits_the_invitee_and_hides_from_everyone_else(connect):
    room = unique("ops")
    alice, bob, carol = (v2(connect, name) for name in ("Alice", "Bob", "Carol"))
    made = alice.request("createRoom", room=room)
    assert (made.get("joined"), made.get("kind"), made.get("count")) == (room, "private", 1)
    # Carol is not invited: the room is not there for her, whatever she tries
    for action, fields in (("joinRoom", {}), ("history", {"since": 0})):
        refused = carol.request(action, room=room, **fields)
        assert refused["error"]["code"] == "ROOM_NOT_FOUND", refused
    invite = alice.request("invite", room=room, to="bob")
    assert invite == {"ack": "invite", "id": invite["id"], "room": room, "to": "Bob"}
    assert bob.wait_for(lambda f: "invited" in f) == {
        "invited": room,
        "room": room,
        "from": "Alice",
    }
    ack = joined(bob, room)
    assert (ack["kind"], ack["count"]) == ("private", 2)
    said(bob, room, "thanks for the invite")
    assert alice.wait_for(lambda f: "publicMessage" in f)["text"] == "thanks for the invite"
    still = carol.request("joinRoom", room=room)
    assert still["error"]["code"] == "ROOM_NOT_FOUND"
    assert [f for f in carol.quiet() if "publicMessage" in f] == []


def test_a_direct_conversation_is_kept_and_recovered_with_the_history_of_its_room(connect):
    bob_key = fresh_key()
    alice, bob = v2(connect, "Alice"), v2(connect, "Bob", bob_key)
    ack = alice.request("sendPrivate", to="Bob", message="just us")
    assert ack["ack"] == "sendPrivate", ack
    direct = ack["room"]
    assert direct.startswith("@") and len(direct) == 33
    got = bob.wait_for(lambda f: "directMessage" in f)
    assert (got["directMessage"], got["room"], got["to"]) == ("Alice: just us", direct, "Bob")
    assert (got["seq"], got["messageId"]) == (ack["seq"], ack["messageId"])
    # WHEN Bob comes back on a new connection with the same clientKey (another tab, a reload)
    bob.close()
    again = v2(connect, "Bob", bob_key)
    ack_join = joined(again, direct)
    assert ack_join["kind"] == "direct"
    # THEN the direct room's history has the message
    reply = again.request("history", room=direct, since=0)
    assert reply.get("final") is True, reply
    texts = [(m.get("from"), m.get("text")) for m in reply["history"]]
    assert ("Alice", "just us") in texts
    # AND a third person can neither join it nor read it
    eve = v2(connect, "Eve")
    for action, fields in (("joinRoom", {}), ("history", {"since": 0})):
        refused = eve.request(action, room=direct, **fields)
        assert refused["error"]["code"] == "ROOM_NOT_FOUND", refused


def test_typing_reaches_the_other_v2_members_only_and_is_never_stored(connect):
    room = unique("typ")
    lobbyist = connect().join("Lobbyist")
    alice, bob = v2(connect, "Alice"), v2(connect, "Bob")
    for client in (alice, bob):
        joined(client, room)
        joined(client, "lobby")
    alice.quiet()
    lobbyist.quiet()
    # WHEN Alice types in the room, and Bob in the lobby
    alice.send("typing", room=room)
    typing = bob.wait_for(lambda f: "typing" in f)
    assert (typing["typing"], typing["room"]) == ("Alice", room)
    assert isinstance(typing["ts"], int)
    bob.send("typing", room="lobby")
    assert alice.wait_for(lambda f: "typing" in f)["room"] == "lobby"
    # THEN the typer is not told, nor acknowledged, and the v1 member of the lobby sees nothing
    assert [f for f in alice.quiet() if f.get("room") == room] == []
    assert lobbyist.quiet() == []
    # AND neither room's history holds it
    for room_name in (room, "lobby"):
        reply = alice.request("history", room=room_name, since=0)
        assert reply.get("final") is True, reply
        assert [m for m in reply["history"] if "typing" in m] == []


def test_edits_and_deletes_of_ones_own_message_reach_the_room_and_a_since_recovery(connect):
    room = unique("edit")
    alice, bob = v2(connect, "Alice"), v2(connect, "Bob")
    start = joined(alice, room)["seq"]
    joined(bob, room)
    typo = said(alice, room, "teh typo")
    oops = said(alice, room, "oops")
    # Bob may not change Alice's message
    refused = bob.request("deleteMessage", room=room, messageId=typo["messageId"], seq=typo["seq"])
    assert refused["error"]["code"] == "NOT_YOURS"
    edit = alice.request(
        "editMessage", room=room, messageId=typo["messageId"], seq=typo["seq"], message="the fix"
    )
    assert (edit["ack"], edit["messageId"], edit["room"]) == (
        "editMessage",
        typo["messageId"],
        room,
    )
    edited = bob.wait_for(lambda f: "messageEdited" in f)
    assert (edited["of"], edited["text"], edited["seq"]) == (typo["seq"], "the fix", edit["seq"])
    removed = alice.request(
        "deleteMessage", room=room, messageId=oops["messageId"], seq=oops["seq"]
    )
    assert removed["ack"] == "deleteMessage", removed
    deleted = bob.wait_for(lambda f: "messageDeleted" in f)
    assert (deleted["of"], deleted["seq"]) == (oops["seq"], removed["seq"])
    # WHEN Carol joins and recovers since before the messages
    carol = v2(connect, "Carol")
    joined(carol, room)
    reply = carol.request("history", room=room, since=start)
    assert reply.get("final") is True, reply
    history = reply["history"]
    # THEN she sees the message at its latest version, the tombstone, and both events
    latest = next(m for m in history if m.get("messageId") == typo["messageId"] and "text" in m)
    assert (latest["text"], latest.get("edited")) == ("the fix", True)
    events = [m for m in history if m.get("messageEdited") == typo["messageId"]]
    assert [m["of"] for m in events] == [typo["seq"]]
    assert any(m.get("messageDeleted") == oops["messageId"] for m in history)
    assert all(m.get("text") != "oops" for m in history)
    seqs = [m["seq"] for m in history]
    assert seqs == sorted(seqs) and edit["seq"] in seqs and removed["seq"] in seqs


def test_mark_read_and_list_rooms_count_the_unread_messages(connect):
    room = unique("read")
    alice, bob = v2(connect, "Alice"), v2(connect, "Bob")
    joined(alice, room)
    joined(bob, room)
    copies = [said(alice, room, f"message {n}") for n in range(3)]
    read = bob.request("markRead", room=room, seq=copies[0]["seq"])
    assert read == {"ack": "markRead", "id": read["id"], "room": room, "seq": copies[0]["seq"]}
    listed = bob.request("listRooms")
    assert listed.get("final") is True and listed.get("complete") is True, listed
    mine = {entry["room"]: entry for entry in listed["rooms"]["mine"]}
    assert mine[room] == {
        "room": room,
        "kind": "public",
        "lastRead": copies[0]["seq"],
        "unread": 2,
    }
    assert {"room": room, "kind": "public"} in listed["rooms"]["public"]
    # never moves back
    back = bob.request("markRead", room=room, seq=0)
    assert back["seq"] == copies[0]["seq"]
    caught_up = bob.request("markRead", room=room, seq=copies[-1]["seq"])
    assert caught_up["seq"] == copies[-1]["seq"]
    again = {e["room"]: e for e in bob.request("listRooms")["rooms"]["mine"]}
    assert again[room]["unread"] == 0


def test_a_v2_disconnect_announces_the_leave_in_each_room_and_leaves_the_table_consistent(
    connect, chat_sandbox
):
    first, second = unique("one"), unique("two")
    alice, bob, carol = (v2(connect, name) for name in ("Alice", "Bob", "Carol"))
    for client, room in ((alice, first), (alice, second), (bob, first), (carol, second)):
        joined(client, room)
    bob.quiet()
    carol.quiet()
    alice.close()
    for client, room in ((bob, first), (carol, second)):
        leave = client.wait_for(lambda f: f.get("event") == "leave")
        assert leave == {
            "systemMessage": f"Alice has left {room}",
            "event": "leave",
            "name": "Alice",
            "room": room,
        }
        assert client.wait_for(lambda f: "members" in f)["room"] == room
    assert settled_table_problems(chat_sandbox) == []


def test_leave_room_is_acknowledged_announced_and_ends_the_membership(connect):
    room = unique("bye")
    alice, bob = v2(connect, "Alice"), v2(connect, "Bob")
    joined(alice, room)
    joined(bob, room)
    alice.quiet()
    left = bob.request("leaveRoom", room=room)
    assert left == {"left": room, "room": room, "id": left["id"]}
    leave = alice.wait_for(lambda f: f.get("event") == "leave")
    assert leave == {
        "systemMessage": f"Bob has left {room}",
        "event": "leave",
        "name": "Bob",
        "room": room,
    }
    assert alice.wait_for(lambda f: "members" in f) == {"members": ["Alice"], "room": room}
    refused = bob.request("sendPublic", room=room, message="still here?")
    assert refused["error"]["code"] == "NOT_IN_ROOM"
    assert alice.quiet() == []
