"""Moderation (issue 17) through the Lambda handler, on both stores: who may do each `moderate`
op, what each enforces, the audit entry and the log line, the announcement in the room's
sequence (live, and recovered with `since`), and v1 lobby clients that see nothing new."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chat.ports import STACK_SCOPE
from tests.handler.test_rooms_handler import (  # the rooms suite's stacks, on both stores
    Stack,
    in_room,
    make_stack,
    sent,
    stack,
    store_kind,
    without,
)
from tests.support.aws import TABLE
from tests.support.consistency import scan, table_problems

__all__ = ["make_stack", "stack", "store_kind"]

Frame = dict[str, Any]


def moderate(stack: Stack, cid: str, op: str, **fields: Any) -> None:
    stack.send(cid, {"action": "moderate", "op": op, **fields})


def said(stack: Stack, cid: str, room: str, text: str) -> Frame:
    """A message sent, as its sender's copy (what it was sent before is forgotten)."""
    stack.take(cid)
    return sent(stack, cid, room, text)


def announcements(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if "moderation" in f]


def audit(stack: Stack, scope: str) -> list[Any]:
    return list(stack.store.audit_entries(scope, 10))


@pytest.fixture
def signed_in(make_stack):
    """A stack with sign-in: connections carry their account and groups."""
    made = make_stack()
    made.configure(sign_in=True)
    return made


# --- kick, and who may -------------------------------------------------------------------


def test_the_creator_kicks_a_member_who_is_told_and_leaves_and_the_room_sees_the_leave(
    stack, caplog
):
    # GIVEN Alice made "dev" (her join created it), Bob and Carol are in it
    alice, bob, carol = in_room(stack, "dev", "Alice", "Bob", "Carol")
    caplog.set_level(logging.INFO, logger="chat.moderation")
    # WHEN Alice kicks Bob, with a reason and an id
    moderate(stack, alice, "kick", room="dev", target="Bob", reason="spam", id="k1")
    # THEN Bob is told, then leaves the room
    told, left = stack.take(bob)
    assert without(told, "ts") == {
        "moderation": "kick",
        "room": "dev",
        "by": "Alice",
        "target": "Bob",
        "reason": "spam",
        "systemMessage": "Bob was removed from dev by Alice",
        "seq": 1,
        "prev": 0,
    }
    assert left == {"left": "dev", "room": "dev"}
    # AND Carol gets the announcement, then the usual leave notice and list
    carol_got = stack.take(carol)
    assert carol_got[0] == told
    assert (carol_got[1]["event"], carol_got[1]["name"]) == ("leave", "Bob")
    assert carol_got[2]["members"] == ["Alice", "Carol"]
    # AND Alice gets the announcement and her acknowledgement with its seq
    mine = stack.take(alice)
    assert mine[0] == told
    assert {"ack": "moderate", "id": "k1", "op": "kick", "room": "dev", "seq": 1} in mine
    # AND Bob is out: his messages to the room are refused
    stack.send(bob, {"action": "sendPublic", "room": "dev", "message": "hi"})
    assert stack.error(bob)["code"] == "NOT_IN_ROOM"
    # AND the audit log and the log line say who did what to whom, where and why
    (entry,) = audit(stack, "dev")
    assert (entry.actor_name, entry.op, entry.target, entry.reason) == (
        "Alice",
        "kick",
        "Bob",
        "spam",
    )
    assert entry.actor == f"key#{'key-of-Alice'.ljust(16, 'x')}"
    (line,) = [r for r in caplog.records if r.getMessage() == "moderation"]
    assert (line.op, line.target, line.room, line.reason, line.actorName) == (
        "kick",
        "Bob",
        "dev",
        "spam",
        "Alice",
    )


def test_a_member_may_not_moderate_and_an_appointed_moderator_may_not_touch_the_creator(stack):
    alice, bob, carol = in_room(stack, "dev", "Alice", "Bob", "Carol")
    moderate(stack, bob, "kick", room="dev", target="Carol", id="k1")
    error = stack.error(bob)
    assert error["code"] == "NOT_MODERATOR"
    assert error["action"] == "moderate"
    # WHEN the creator appoints Bob
    moderate(stack, alice, "appoint", room="dev", target="Bob")
    assert [f["moderation"] for f in announcements(stack.take(carol))] == ["appoint"]
    stack.notifier.clear()
    # THEN he may kick Carol, but not Alice, and may not appoint anyone himself
    moderate(stack, bob, "kick", room="dev", target="Alice")
    assert stack.error(bob)["code"] == "NOT_MODERATOR"
    moderate(stack, bob, "appoint", room="dev", target="Carol")
    assert stack.error(bob)["code"] == "NOT_MODERATOR"
    moderate(stack, bob, "kick", room="dev", target="Carol")
    assert stack.take(carol)[-1] == {"left": "dev", "room": "dev"}
    # AND once dismissed he may not
    moderate(stack, alice, "dismiss", room="dev", target="Bob")
    stack.notifier.clear()
    moderate(stack, bob, "topic", room="dev", topic="mine now")
    assert stack.error(bob)["code"] == "NOT_MODERATOR"


def test_nobody_moderates_the_lobby_without_sign_in_and_disconnect_is_for_stack_moderators(
    stack,
):
    alice, _bob = in_room(stack, "lobby", "Alice", "Bob")
    moderate(stack, alice, "kick", room="lobby", target="Bob")
    assert stack.error(alice)["code"] == "NOT_MODERATOR"
    in_room(stack, "dev", "Carol")
    moderate(stack, "Carol=", "disconnect", room="dev", target="Bob")
    assert stack.error("Carol=")["code"] == "NOT_MODERATOR"
    assert stack.notifier.closed == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"op": "explode", "room": "dev"}, "INVALID_MODERATION"),
        ({"op": "mute", "room": "dev", "target": "Bob"}, "INVALID_MODERATION"),
        ({"op": "mute", "room": "dev", "target": "Bob", "seconds": 0}, "INVALID_MODERATION"),
        ({"op": "slowMode", "room": "dev", "seconds": 100_000}, "INVALID_MODERATION"),
        ({"op": "ban", "room": "dev", "seconds": 60}, "INVALID_MODERATION"),
        (
            {"op": "ban", "room": "dev", "name": "Bob", "sub": "x", "seconds": 60},
            "INVALID_MODERATION",
        ),
        (
            {"op": "kick", "room": "dev", "target": "Bob", "reason": "a\u202eb"},
            "INVALID_MODERATION",
        ),
        ({"op": "topic", "room": "dev", "topic": "x" * 201}, "INVALID_MODERATION"),
        ({"op": "kick", "room": "dev", "scope": "stack", "target": "Bob"}, "INVALID_MODERATION"),
        ({"op": "kick", "room": "dev", "target": "Nobody"}, "UNKNOWN_RECIPIENT"),
        ({"op": "delete", "room": "dev", "messageId": "nope", "seq": 9}, "UNKNOWN_MESSAGE"),
        ({"op": "topic", "room": "nowhere", "topic": "x"}, "ROOM_NOT_FOUND"),
    ],
)
def test_a_moderate_frame_that_asks_for_nothing_sensible_is_refused(stack, fields, code):
    (alice, _bob) = in_room(stack, "dev", "Alice", "Bob")
    stack.send(alice, {"action": "moderate", **fields, "id": "m1"})
    error = stack.error(alice)
    assert (error["code"], error["id"]) == (code, "m1")


def test_a_v1_connection_has_no_moderate_action(stack):
    bob = stack.v1("Bob")
    stack.send(bob, {"action": "moderate", "op": "kick", "room": "lobby", "target": "X"})
    assert stack.error(bob)["code"] == "UNKNOWN_ACTION"


# --- delete --------------------------------------------------------------------------------


def test_a_moderator_deletes_anyones_message_at_any_age_with_the_tombstone_event(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    message = said(stack, bob, "dev", "rude")
    stack.take(alice)
    stack.clock.now += 1000  # past the edit window (900 s)
    mid = message["messageId"]
    moderate(stack, alice, "delete", room="dev", messageId=mid, seq=1, id="d1")
    (event,) = stack.take(bob)
    assert without(event, "ts") == {
        "messageDeleted": mid,
        "room": "dev",
        "of": 1,
        "from": "Bob",
        "seq": 2,
        "prev": 1,
        "by": "Alice",
    }
    assert stack.take(alice) == [
        event,
        {"ack": "moderate", "id": "d1", "op": "delete", "room": "dev", "seq": 2},
    ]
    stack.send(bob, {"action": "history", "room": "dev", "id": "h1"})
    (reply,) = stack.take(bob)
    assert [m["messageDeleted"] for m in reply["history"]] == [mid, mid]
    assert audit(stack, "dev")[0].target == "message 1"
    # AND a member may still not delete another's message
    other = said(stack, alice, "dev", "mine")
    stack.take(bob)
    moderate(stack, bob, "delete", room="dev", messageId=other["messageId"], seq=other["seq"])
    assert stack.error(bob)["code"] == "NOT_MODERATOR"


# --- mute, slow mode ------------------------------------------------------------------------


def test_a_muted_member_may_not_send_edit_or_type_until_the_mute_ends_even_after_rejoining(
    stack,
):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    earlier = said(stack, bob, "dev", "before")
    moderate(stack, alice, "mute", room="dev", target="Bob", seconds=60)
    (told,) = announcements(stack.take(bob))
    assert (told["target"], told["seconds"]) == ("Bob", 60)
    stack.notifier.clear()
    stack.send(bob, {"action": "sendPublic", "room": "dev", "message": "hi"})
    error = stack.error(bob)
    assert (error["code"], error["retryAfterMs"]) == ("MUTED", 60_000)
    edit = {"messageId": earlier["messageId"], "seq": earlier["seq"], "message": "x"}
    stack.send(bob, {"action": "editMessage", "room": "dev", **edit})
    assert stack.error(bob)["code"] == "MUTED"
    stack.clock.now += 5
    stack.send(bob, {"action": "typing", "room": "dev"})
    assert stack.error(bob)["code"] == "MUTED"
    assert stack.take(alice) == []
    # WHEN he leaves and joins again, the mute is still his
    stack.send(bob, {"action": "leaveRoom", "room": "dev"})
    stack.join(bob, "dev")
    stack.notifier.clear()
    stack.send(bob, {"action": "sendPublic", "room": "dev", "message": "hi"})
    assert stack.error(bob)["code"] == "MUTED"
    # THEN once it ends he speaks again
    stack.clock.now += 60
    assert said(stack, bob, "dev", "back")["text"] == "back"


def test_unmute_lifts_a_mute_at_once(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    moderate(stack, alice, "mute", room="dev", target="Bob", seconds=600)
    moderate(stack, alice, "unmute", room="dev", target="Bob")
    assert [f["moderation"] for f in announcements(stack.take(bob))] == ["mute", "unmute"]
    assert said(stack, bob, "dev", "thanks")["text"] == "thanks"


def test_slow_mode_spaces_each_members_messages_but_not_the_moderators(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    moderate(stack, alice, "slowMode", room="dev", seconds=30, id="s1")
    (told,) = announcements(stack.take(bob))
    assert told["systemMessage"] == "Slow mode in dev is now 30 seconds (Alice)"
    said(stack, bob, "dev", "one")
    stack.clock.now += 10
    stack.send(bob, {"action": "sendPublic", "room": "dev", "message": "two"})
    error = stack.error(bob)
    assert (error["code"], error["retryAfterMs"]) == ("SLOW_MODE", 20_000)
    # the creator is exempt
    stack.notifier.clear()
    said(stack, alice, "dev", "a")
    said(stack, alice, "dev", "b")
    # a member who joins later is slowed too
    (carol,) = in_room(stack, "dev", "Carol")
    said(stack, carol, "dev", "first")
    stack.send(carol, {"action": "sendPublic", "room": "dev", "message": "second"})
    assert stack.error(carol)["code"] == "SLOW_MODE"
    stack.clock.now += 20
    assert said(stack, bob, "dev", "two")["text"] == "two"
    # 0 turns it off
    moderate(stack, alice, "slowMode", room="dev", seconds=0)
    stack.notifier.clear()
    said(stack, bob, "dev", "three")
    assert said(stack, bob, "dev", "four")["text"] == "four"


# --- bans ----------------------------------------------------------------------------------


def test_a_room_ban_kicks_the_member_and_refuses_the_name_and_its_look_alikes(stack):
    alice, bob, carol = in_room(stack, "dev", "Alice", "Bob", "Carol")
    moderate(stack, alice, "ban", room="dev", name="Bob", seconds=3600, reason="abuse")
    told, left = stack.take(bob)
    assert (told["moderation"], told["target"], told["seconds"]) == ("ban", "Bob", 3600)
    assert left == {"left": "dev", "room": "dev"}
    assert stack.take(carol)[1]["name"] == "Bob"
    stack.join(bob, "dev")
    error = stack.error(bob)
    assert (error["code"], error["retryAfterMs"]) == ("BANNED", 3_600_000)
    # other rooms are open to him
    stack.join(bob, "elsewhere")
    assert stack.take(bob)[0]["joined"] == "elsewhere"
    # a look-alike name is the same name
    stack.disconnect(bob)
    bob = stack.v2("BOB")
    stack.join(bob, "dev")
    assert stack.error(bob)["code"] == "BANNED"
    # and unban lets him back
    stack.join(bob, "elsewhere")
    assert stack.take(bob)[0]["joined"] == "elsewhere"
    moderate(stack, alice, "unban", room="dev", name="Bob")
    stack.join(bob, "dev")
    assert stack.take(bob)[0]["joined"] == "dev"


def test_a_room_ban_by_address_names_no_address_in_the_room(stack):
    alice = stack.v2("Alice")
    stack.join(alice, "dev")
    bob = stack.v2("Bob", source_ip="203.0.113.9")
    stack.join(bob, "dev")
    stack.notifier.clear()
    moderate(stack, alice, "ban", room="dev", address="203.0.113.9", seconds=60)
    told = announcements(stack.take(alice))[0]
    assert "target" not in told
    assert told["targetKind"] == "address"
    assert told["systemMessage"] == "an address was banned from dev by Alice"
    assert stack.take(bob)[-1] == {"left": "dev", "room": "dev"}
    assert audit(stack, "dev")[0].target == "address:203.0.113.9"


def test_a_stack_ban_needs_a_stack_moderator_and_closes_and_refuses_the_account(signed_in):
    stack = signed_in
    mod = stack.v2("Mod", sub="sub-mod", groups="moderators")
    alice = stack.v2("Alice", sub="sub-alice")
    bob = stack.v2("Bob", sub="sub-bob")
    stack.join(alice, "dev")
    stack.join(bob, "dev")
    stack.notifier.clear()
    # the room's creator may not ban across the stack
    moderate(stack, alice, "ban", scope="stack", sub="sub-bob", seconds=60)
    assert stack.error(alice)["code"] == "NOT_MODERATOR"
    # a stack moderator does: Bob's connection is closed
    moderate(stack, mod, "ban", scope="stack", sub="sub-bob", seconds=60, id="b1")
    assert stack.take(mod) == [{"ack": "moderate", "id": "b1", "op": "ban"}]
    assert stack.notifier.closed == [bob]
    assert audit(stack, STACK_SCOPE)[0].target == "sub:sub-bob"
    # and his next connection may not take a name
    stack.disconnect(bob)
    stack.connect(bob, sub="sub-bob")
    stack.send(bob, {"action": "setName", "name": "Bob", "protocol": 2})
    assert stack.error(bob)["code"] == "BANNED"
    # until it ends
    stack.clock.now += 61
    stack.send(bob, {"action": "setName", "name": "Bob", "protocol": 2, "id": "n1"})
    assert stack.take(bob)[-1]["ack"] == "setName"


def test_a_stack_moderator_disconnects_a_member_and_the_room_is_told(signed_in):
    stack = signed_in
    mod = stack.v2("Mod", sub="sub-mod", groups="moderators")
    alice = stack.v2("Alice", sub="sub-alice")
    stack.join(alice, "dev")
    stack.notifier.clear()
    moderate(stack, mod, "disconnect", room="dev", target="Alice", id="x1")
    assert stack.notifier.closed == [alice]
    (told,) = announcements(stack.take(alice))
    assert told["systemMessage"] == "Alice was disconnected by Mod"
    # a stack moderator outranks the room's creator, not another stack moderator
    other = stack.v2("Other", sub="sub-other", groups="moderators")
    moderate(stack, mod, "disconnect", room="dev", target="Other")
    assert stack.error(mod)["code"] == "NOT_MODERATOR"
    assert other not in stack.notifier.closed


# --- topic, announcements in the sequence, v1 clients ---------------------------------------


def test_a_topic_is_announced_and_shown_on_join_and_in_the_rooms_list(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    moderate(stack, alice, "topic", room="dev", topic="  Release day  ")
    (told,) = announcements(stack.take(bob))
    assert told["topic"] == "Release day"
    carol = stack.v2("Carol")
    stack.join(carol, "dev")
    assert stack.take(carol)[0]["topic"] == "Release day"
    stack.send(carol, {"action": "listRooms", "id": "r1"})
    (listed,) = stack.take(carol)
    assert {"room": "dev", "kind": "public", "topic": "Release day"} in listed["rooms"]["public"]
    moderate(stack, alice, "topic", room="dev", topic="")
    stack.send(carol, {"action": "listRooms", "id": "r2"})
    assert {"room": "dev", "kind": "public"} in [
        r for f in stack.take(carol) if "rooms" in f for r in f["rooms"]["public"]
    ]


def test_announcements_take_the_rooms_seq_and_recovery_with_since_sees_them(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    said(stack, alice, "dev", "one")  # seq 1
    moderate(stack, alice, "topic", room="dev", topic="Rules")  # seq 2
    live = announcements(stack.notifier.raw_frames(bob))[0]
    message = said(stack, alice, "dev", "two")  # seq 3, its prev the announcement
    assert (live["seq"], live["prev"], message["seq"], message["prev"]) == (2, 1, 3, 2)
    stack.notifier.clear()
    stack.send(bob, {"action": "history", "room": "dev", "since": 1, "id": "h1"})
    (reply,) = stack.notifier.raw_frames(bob)
    assert reply["history"][0] == live  # the very frame, eventId included
    assert reply["complete"] is True


def test_v1_lobby_clients_see_nothing_new_until_a_kick_closes_one(signed_in):
    stack = signed_in
    mod = stack.v2("Mod", sub="sub-mod", groups="moderators")
    stack.join(mod, "lobby")
    stack.connect("Vera=", sub="sub-vera")
    stack.send("Vera=", {"action": "setName", "name": "Vera"})
    stack.connect("Walt=", sub="sub-walt")
    stack.send("Walt=", {"action": "setName", "name": "Walt"})
    stack.notifier.clear()
    moderate(stack, mod, "topic", room="lobby", topic="Welcome")
    moderate(stack, mod, "slowMode", room="lobby", seconds=5)
    assert stack.take("Vera=") == []
    assert [f["moderation"] for f in announcements(stack.take(mod))] == ["topic", "slowMode"]
    # a kick from the lobby closes a v1 connection; its $disconnect is the usual leave
    moderate(stack, mod, "kick", room="lobby", target="Walt")
    assert stack.notifier.closed == ["Walt="]
    assert stack.take("Vera=") == []
    stack.disconnect("Walt=")
    notice = stack.take("Vera=")[0]
    assert (notice["event"], notice["name"]) == ("leave", "Walt")
    # v1 history of the lobby holds no announcement
    stack.send("Vera=", {"action": "history", "id": "h1"})
    (reply,) = stack.take("Vera=")
    assert all("moderation" not in m for m in reply["history"])


def test_a_moderator_announces_in_the_room_and_the_history_keeps_it(stack):
    # GIVEN Alice made "dev" and Bob is in it
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    # WHEN Alice announces
    moderate(stack, alice, "announce", room="dev", message="Maintenance at 6", id="a1")
    # THEN Bob gets the announcement with the room's next seq, Alice hers and her ack
    (told,) = announcements(stack.take(bob))
    assert without(told, "ts", "eventId") == {
        "moderation": "announce",
        "room": "dev",
        "by": "Alice",
        "systemMessage": "Maintenance at 6",
        "seq": 1,
        "prev": 0,
    }
    assert stack.take(alice)[-1] == {
        "ack": "moderate",
        "id": "a1",
        "op": "announce",
        "room": "dev",
        "seq": 1,
    }
    # AND the history keeps it; a member may not announce
    stack.send(bob, {"action": "history", "room": "dev", "since": 0, "id": "h1"})
    (reply,) = stack.take(bob)
    assert reply["history"][0]["systemMessage"] == "Maintenance at 6"
    moderate(stack, bob, "announce", room="dev", message="me too")
    assert stack.error(bob)["code"] == "NOT_MODERATOR"


@pytest.mark.parametrize("message", [None, "", "   ", "x" * 1001, "bell\u0007"])
def test_an_announcement_without_a_sensible_message_is_refused(stack, message):
    (alice,) = in_room(stack, "dev", "Alice")
    fields = {} if message is None else {"message": message}
    moderate(stack, alice, "announce", room="dev", **fields)
    assert stack.error(alice)["code"] == "INVALID_MODERATION"


def test_a_lobby_announcement_reaches_v1_clients_as_a_system_message(signed_in):
    stack = signed_in
    mod = stack.v2("Mod", sub="sub-mod", groups="moderators")
    stack.join(mod, "lobby")
    stack.connect("Vera=", sub="sub-vera")
    stack.send("Vera=", {"action": "setName", "name": "Vera"})
    stack.notifier.clear()
    moderate(stack, mod, "announce", room="lobby", message="Welcome all")
    assert stack.take("Vera=") == [{"systemMessage": "Welcome all"}]
    assert [f["moderation"] for f in announcements(stack.take(mod))] == ["announce"]


def test_the_table_stays_consistent_through_every_op(monkeypatch, db):
    # GIVEN DynamoChatStore on moto, a room with a creator, a member and a lobby with a v2
    stack = Stack(monkeypatch, db)
    alice, bob, carol = in_room(stack, "dev", "Alice", "Bob", "Carol")
    stack.join(alice, "lobby")
    message = said(stack, bob, "dev", "hello")
    # WHEN every room op runs
    moderate(stack, alice, "appoint", room="dev", target="Carol")
    moderate(stack, alice, "topic", room="dev", topic="t")
    moderate(stack, alice, "slowMode", room="dev", seconds=5)
    moderate(stack, alice, "mute", room="dev", target="Bob", seconds=60)
    moderate(stack, alice, "unmute", room="dev", target="Bob")
    moderate(stack, alice, "delete", room="dev", messageId=message["messageId"], seq=1)
    moderate(stack, carol, "kick", room="dev", target="Bob")
    moderate(stack, alice, "ban", room="dev", name="Carol", seconds=60)
    moderate(stack, alice, "dismiss", room="dev", target="Carol")
    # THEN each was done, and the table keeps every invariant
    ops = [entry.op for entry in stack.store.audit_entries("dev", 20)]
    assert sorted(ops) == sorted(
        ["appoint", "topic", "slowMode", "mute", "unmute", "delete", "kick", "ban", "dismiss"]
    )
    assert table_problems(scan(db, TABLE)) == []
    stack.disconnect(alice)
    stack.disconnect(bob)
    stack.disconnect(carol)
    assert table_problems(scan(db, TABLE)) == []


# --- the joiner's standing in `joined` ------------------------------------------------------


def joined_ack(stack: Stack, cid: str, room: str) -> Frame:
    stack.take(cid)
    stack.join(cid, room)
    ack: Frame = stack.take(cid)[0]
    assert ack["joined"] == room, ack
    return ack


def test_joined_names_the_creators_role_and_a_plain_member_has_none(stack):
    alice = stack.v2("Alice")
    stack.join(alice, "dev")
    assert stack.take(alice)[0]["role"] == "creator"
    bob = stack.v2("Bob")
    assert "role" not in joined_ack(stack, bob, "dev")
    # AND the creator rejoining (after a reconnect, say) is still told
    assert joined_ack(stack, alice, "dev")["role"] == "creator"


def test_create_room_names_the_creator(stack):
    alice = stack.v2("Alice")
    stack.send(alice, {"action": "createRoom", "room": "ops", "kind": "public", "id": "c1"})
    assert stack.take(alice)[0]["role"] == "creator"


def test_an_appointed_member_joins_as_moderator_until_dismissed(stack):
    alice, bob = in_room(stack, "dev", "Alice", "Bob")
    moderate(stack, alice, "appoint", room="dev", target="Bob")
    assert joined_ack(stack, bob, "dev")["role"] == "moderator"
    moderate(stack, alice, "dismiss", room="dev", target="Bob")
    assert "role" not in joined_ack(stack, bob, "dev")


def test_a_stack_moderator_by_sign_in_group_joins_any_room_as_stack_moderator(signed_in):
    stack = signed_in
    alice = stack.v2("Alice", sub="sub-alice", groups="dev")
    stack.join(alice, "dev")
    mod = stack.v2("Mod", sub="sub-mod", groups="dev, moderators")
    assert joined_ack(stack, mod, "dev")["role"] == "stackModerator"
    assert joined_ack(stack, mod, "lobby")["role"] == "stackModerator"
    # AND without the group, a signed-in member of the lobby has no role there
    assert "role" not in joined_ack(stack, alice, "lobby")
