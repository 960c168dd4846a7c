"""Protocol v2's frames (issue 16): each example of docs/rooms-design.md §3 is what its
builder makes, key order included; long lists split under one 32 KB unit; v1 frames as
they were."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chat import frames
from chat.errors import ChatError, ErrorCode
from chat.frames import (
    FRAME_BUDGET_BYTES,
    UNREAD_CAP,
    Invitation,
    ListedRoom,
    MyRoom,
    Stamp,
    encode,
)

Frame = dict[str, Any]
UNIT = 32 * 1024


def exactly(expected_line: str, built: Frame) -> None:
    """The built frame is the example: same keys in the same order, same values."""
    expected = json.loads(expected_line)
    assert built == expected
    assert list(built) == list(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert list(built[key]) == list(value), key


# Each example line of §3, verbatim, and how the server builds it.
EXAMPLES: list[tuple[str, Callable[[], Frame]]] = [
    (
        '{"ack":"setName","id":"n1","name":"Alice","protocol":2}',
        lambda: frames.protocol_ack("n1", "Alice", 2),
    ),
    (
        '{"joined":"dev","room":"dev","kind":"public","count":3,"seq":57,"lastRead":41,"id":"j1"}',
        lambda: frames.room_joined("dev", "public", count=3, seq=57, last_read=41, client_id="j1"),
    ),
    (
        '{"joined":"dev","room":"dev","kind":"public","count":3,"seq":57,"lastRead":41,'
        '"role":"creator","topic":"Release day","id":"j1"}',
        lambda: frames.room_joined(
            "dev",
            "public",
            count=3,
            seq=57,
            last_read=41,
            client_id="j1",
            topic="Release day",
            role="creator",
        ),
    ),
    (
        '{"joined":"ops","room":"ops","kind":"private","count":2,"seq":0,"lastRead":0,'
        '"group":"sre","id":"j1"}',
        lambda: frames.room_joined(
            "ops", "private", count=2, seq=0, last_read=0, client_id="j1", group="sre"
        ),
    ),
    ('{"left":"dev","room":"dev","id":"l1"}', lambda: frames.room_left("dev", "l1")),
    (
        '{"members":["alice","Bob"],"room":"dev","eventId":"6f1c0e9a4b2d7781"}',
        lambda: frames.room_members(["Bob", "alice"], "dev", "6f1c0e9a4b2d7781"),
    ),
    (
        '{"presence":{"count":1204,"joined":["Carol"],"left":[]},"room":"dev","eventId":"9a0c…"}',
        lambda: frames.presence("dev", 1204, joined=["Carol"], event_id="9a0c…"),
    ),
    (
        '{"systemMessage":"Alice has joined dev","event":"join","name":"Alice","room":"dev",'
        '"eventId":"a3d9…"}',
        lambda: frames.room_notice_joined("Alice", "dev", "a3d9…"),
    ),
    (
        '{"typing":"Alice","room":"dev","ts":1795654691420}',
        lambda: frames.typing("Alice", "dev", 1795654691420),
    ),
    (
        '{"publicMessage":"Alice: hi","room":"dev","from":"Alice","text":"hi",'
        '"ts":1795654691420,"seq":58,"messageId":"7ac1…","prev":57}',
        lambda: frames.room_message(
            "Alice", "hi", Stamp(seq=58, message_id="7ac1…", ts=1795654691420, prev=57), "dev"
        ),
    ),
    (
        '{"messageEdited":"3f6c0a1e9b7d4c2a","room":"dev","of":42,"from":"Alice","text":"fixed",'
        '"ts":1795654699000,"seq":59,"prev":58,"eventId":"c0de…"}',
        lambda: frames.message_edited(
            "Alice",
            "fixed",
            of=42,
            stamp=Stamp(seq=59, message_id="3f6c0a1e9b7d4c2a", ts=1795654699000, prev=58),
            room="dev",
            event_id="c0de…",
        ),
    ),
    (
        '{"messageDeleted":"3f6c0a1e9b7d4c2a","room":"dev","of":42,"from":"Alice",'
        '"ts":1795654702000,"seq":60,"prev":59,"eventId":"d311…"}',
        lambda: frames.message_deleted(
            "Alice",
            of=42,
            stamp=Stamp(seq=60, message_id="3f6c0a1e9b7d4c2a", ts=1795654702000, prev=59),
            room="dev",
            event_id="d311…",
        ),
    ),
    (
        '{"directMessage":"Alice: hi!","room":"@5b0e9c…","from":"Alice","to":"Bob","text":"hi!",'
        '"ts":1795654691420,"seq":3,"messageId":"9d2e…","prev":2}',
        lambda: frames.direct_message(
            "Alice",
            "Bob",
            "hi!",
            Stamp(seq=3, message_id="9d2e…", ts=1795654691420, prev=2),
            "@5b0e9c…",
        ),
    ),
    (
        '{"invited":"ops","room":"ops","from":"Carol","eventId":"1e7f…"}',
        lambda: frames.invited("ops", "Carol", "1e7f…"),
    ),
    (
        '{"ack":"invite","id":"i1","room":"ops","to":"Bob"}',
        lambda: frames.invite_ack("i1", "ops", "Bob"),
    ),
    (
        '{"ack":"editMessage","id":"e1","room":"dev","seq":59,"messageId":"3f6c0a1e9b7d4c2a"}',
        lambda: frames.edit_ack("e1", "dev", 59, "3f6c0a1e9b7d4c2a"),
    ),
    (
        '{"ack":"deleteMessage","id":"d1","room":"dev","seq":60,"messageId":"3f6c0a1e9b7d4c2a"}',
        lambda: frames.delete_ack("d1", "dev", 60, "3f6c0a1e9b7d4c2a"),
    ),
    (
        '{"ack":"markRead","id":"m1","room":"dev","seq":57}',
        lambda: frames.mark_read_ack("m1", "dev", 57),
    ),
]


@pytest.mark.parametrize(("line", "build"), EXAMPLES, ids=[e[0][2:14] for e in EXAMPLES])
def test_each_example_frame_of_the_design_is_what_its_builder_makes(line, build):
    exactly(line, build())


def test_the_example_member_list_part_is_what_the_builder_makes_for_a_big_room():
    line = (
        '{"memberList":["alice","Bob"],"room":"dev","part":1,"parts":3,'
        '"eventId":"0b6e3f2a9c1d4e57"}'
    )
    # Three parts: the room's first two names sort first, and the rest fill two more units.
    names = ["alice", "Bob"] + [f"z{i:05d}" + "x" * 26 for i in range(2500)]
    parts = frames.room_member_pages(names, "dev", "0b6e3f2a9c1d4e57")
    assert len(parts) == 3
    first = {**parts[0], "memberList": parts[0]["memberList"][:2]}
    exactly(line, first)
    assert all(p["room"] == "dev" and p["eventId"] == "0b6e3f2a9c1d4e57" for p in parts)
    assert all(len(encode(p)) < UNIT for p in parts)
    assert [n for p in parts for n in p["memberList"]] == frames.sort_names(names)


def test_the_example_rooms_list_is_what_the_builder_makes():
    line = (
        '{"rooms":{"public":[{"room":"dev","kind":"public"}],"mine":[{"room":"ops",'
        '"kind":"private","lastRead":12,"unread":4},{"room":"@5b0e…","kind":"direct",'
        '"with":"Bob","lastRead":3,"unread":0}],"invited":[{"room":"ops","from":"Carol"}]},'
        '"final":true,"complete":true,"id":"r1"}'
    )
    reply = frames.rooms_list(
        [ListedRoom("dev", "public")],
        [
            MyRoom("ops", "private", last_read=12, unread=4),
            MyRoom("@5b0e…", "direct", last_read=3, unread=0, with_name="Bob"),
        ],
        [Invitation("ops", "Carol")],
        complete=True,
        client_id="r1",
    )
    assert len(reply) == 1
    exactly(line, reply[0])
    for built, expected in zip(
        reply[0]["rooms"]["mine"], json.loads(line)["rooms"]["mine"], strict=True
    ):
        assert list(built) == list(expected)


# --- errors -------------------------------------------------------------------------------

ERROR_EXAMPLES = [
    (
        '{"error":{"code":"UNSUPPORTED_PROTOCOL","message":"This server speaks protocol 1 and 2.",'
        '"action":"setName","supported":[1,2]}}',
        ChatError(
            ErrorCode.UNSUPPORTED_PROTOCOL,
            "This server speaks protocol 1 and 2.",
            details=frames.unsupported_protocol_details(),
        ),
        "setName",
        None,
    ),
    (
        '{"error":{"code":"INVALID_ROOM","message":"A room name must not contain \\"#\\" or a '
        'look-alike of it.","action":"joinRoom","id":"j1"}}',
        None,
        "joinRoom",
        "j1",
    ),
    (
        '{"error":{"code":"ROOM_NOT_FOUND","message":"There is no room by that name (room).",'
        '"action":"joinRoom","id":"j1"}}',
        ChatError(ErrorCode.ROOM_NOT_FOUND, "There is no room by that name (room)."),
        "joinRoom",
        "j1",
    ),
    (
        '{"error":{"code":"ROOM_EXISTS","message":"A room with that name, or one like it, '
        'exists.","action":"createRoom","id":"c1"}}',
        ChatError(ErrorCode.ROOM_EXISTS, "A room with that name, or one like it, exists."),
        "createRoom",
        "c1",
    ),
    (
        '{"error":{"code":"NOT_IN_ROOM","message":"Join the room before sending to it.",'
        '"action":"sendPublic","id":"p1"}}',
        ChatError(ErrorCode.NOT_IN_ROOM, "Join the room before sending to it."),
        "sendPublic",
        "p1",
    ),
    (
        '{"error":{"code":"TOO_MANY_ROOMS","message":"You are in 10 rooms; leave one first.",'
        '"action":"joinRoom","id":"j2"}}',
        ChatError(ErrorCode.TOO_MANY_ROOMS, "You are in 10 rooms; leave one first."),
        "joinRoom",
        "j2",
    ),
    (
        '{"error":{"code":"ROOM_LIMIT","message":"You have created too many rooms recently.",'
        '"action":"joinRoom","retryAfterMs":3600000,"id":"j3"}}',
        ChatError(
            ErrorCode.ROOM_LIMIT,
            "You have created too many rooms recently.",
            retry_after_ms=3_600_000,
        ),
        "joinRoom",
        "j3",
    ),
    (
        '{"error":{"code":"UNKNOWN_MESSAGE","message":"No such message in this room\'s '
        'history.","action":"editMessage","id":"e1"}}',
        ChatError(ErrorCode.UNKNOWN_MESSAGE, "No such message in this room's history."),
        "editMessage",
        "e1",
    ),
    (
        '{"error":{"code":"NOT_YOURS","message":"Only its author can change a message.",'
        '"action":"deleteMessage","id":"d1"}}',
        ChatError(ErrorCode.NOT_YOURS, "Only its author can change a message."),
        "deleteMessage",
        "d1",
    ),
    (
        '{"error":{"code":"EDIT_WINDOW_CLOSED","message":"Messages can be changed for 15 '
        'minutes.","action":"editMessage","id":"e1"}}',
        ChatError(ErrorCode.EDIT_WINDOW_CLOSED, "Messages can be changed for 15 minutes."),
        "editMessage",
        "e1",
    ),
]


def _invalid_room_from_the_rules() -> ChatError:
    from chat.rooms import validate_room_name  # noqa: PLC0415

    with pytest.raises(ChatError) as excinfo:
        validate_room_name("a#b")
    return excinfo.value


@pytest.mark.parametrize(
    ("line", "raised", "action", "client_id"),
    ERROR_EXAMPLES,
    ids=[json.loads(e[0])["error"]["code"] for e in ERROR_EXAMPLES],
)
def test_each_example_error_of_the_design_is_what_the_error_frame_makes_of_its_chat_error(
    line, raised, action, client_id
):
    raised = raised or _invalid_room_from_the_rules()
    built = frames.error(
        raised.code,
        raised.message,
        action,
        raised.retry_after_ms,
        client_id,
        details=raised.details,
    )
    exactly(line, built)
    assert list(built["error"]) == list(json.loads(line)["error"])


def test_the_ten_room_error_codes_are_codes_a_client_can_receive():
    codes = {code.value for code in ErrorCode}
    new = {json.loads(line)["error"]["code"] for line, *_ in ERROR_EXAMPLES}
    assert len(new) == 10
    assert new <= codes


def test_an_error_without_details_is_the_v1_error_frame():
    assert frames.error(ErrorCode.RATE_LIMITED, "Slow down.", "sendPublic", 500, "p1") == {
        "error": {
            "code": "RATE_LIMITED",
            "message": "Slow down.",
            "action": "sendPublic",
            "retryAfterMs": 500,
            "id": "p1",
        }
    }
    assert ChatError(ErrorCode.INTERNAL, "x").details == {}


# --- room frames built on v1 frames -------------------------------------------------------

STAMP = Stamp(seq=58, message_id="7ac1e0b2c3d4e5f6", ts=1795654691420, prev=57)


def test_a_room_frame_is_its_v1_frame_plus_room_and_the_v1_frame_is_unchanged():
    v1 = frames.public_message("Alice", "hi", STAMP)
    v2 = frames.room_message("Alice", "hi", STAMP, "dev")
    assert {k: v for k, v in v2.items() if k != "room"} == v1
    assert "room" not in v1
    assert list(v1) == ["publicMessage", "from", "text", "ts", "seq", "messageId", "prev"]


def test_v2_leave_and_rename_notices_name_the_room_and_keep_the_v1_keys():
    left = frames.room_notice_left("Alice", "dev", "e1")
    assert left == {
        "systemMessage": "Alice has left dev",
        "event": "leave",
        "name": "Alice",
        "room": "dev",
        "eventId": "e1",
    }
    renamed = frames.room_notice_renamed("Alice", "Alicia", "dev", "e2")
    assert list(renamed) == [*list(frames.renamed("Alice", "Alicia", "e2"))[:-1], "room", "eventId"]
    assert renamed["systemMessage"] == "Alice is now known as Alicia"
    assert frames.joined("Alice", "e3")["systemMessage"] == "Alice has joined the chat"


def test_a_direct_message_is_the_private_message_in_the_direct_room_with_its_prev():
    private = frames.private_message("Alice", "Bob", "hi!", STAMP)
    direct = frames.direct_message("Alice", "Bob", "hi!", STAMP, "@5b0e")
    assert "privateMessage" not in direct and direct["directMessage"] == private["privateMessage"]
    assert direct["prev"] == 57 and "prev" not in private


def test_frames_sent_to_many_carry_a_fresh_event_id_each_time():
    builders: list[Callable[[], Frame]] = [
        lambda: frames.room_members(["a"], "dev"),
        lambda: frames.presence("dev", 2000, joined=["a"]),
        lambda: frames.room_notice_joined("a", "dev"),
        lambda: frames.message_edited("a", "t", of=1, stamp=STAMP, room="dev"),
        lambda: frames.message_deleted("a", of=1, stamp=STAMP, room="dev"),
        lambda: frames.invited("ops", "a"),
    ]
    for build in builders:
        first, second = build()["eventId"], build()["eventId"]
        assert isinstance(first, str) and len(first) == 16 and first != second


def test_presence_lists_the_names_sorted_like_member_lists():
    frame = frames.presence("dev", 1500, joined=["bob", "Alice"], left=["Zed", "carol"])
    assert frame["presence"] == {
        "count": 1500,
        "joined": ["Alice", "bob"],
        "left": ["carol", "Zed"],
    }


def test_a_join_ack_without_an_id_has_no_id_key():
    assert "id" not in frames.room_joined("dev", "public", count=1, seq=0, last_read=0)
    assert frames.room_left("dev") == {"left": "dev", "room": "dev"}


# --- history at the latest version ----------------------------------------------------------


def test_an_edited_message_in_the_history_has_the_latest_text_and_says_it_was_edited():
    original = frames.room_message("Alice", "hi", STAMP, "dev")
    latest = frames.edited_version(original, "hello")
    assert latest == {**original, "publicMessage": "Alice: hello", "text": "hello", "edited": True}
    assert list(latest)[: len(original)] == list(original)
    again = frames.edited_version(latest, "hello again")
    assert again["text"] == "hello again" and list(again) == list(latest)


def test_an_edited_lobby_message_is_an_ordinary_public_message_for_v1_readers():
    v1 = frames.public_message("Alice", "hi", STAMP)
    latest = frames.edited_version(v1, "fixed")
    assert latest["publicMessage"] == "Alice: fixed" and latest["text"] == "fixed"
    assert {k: latest[k] for k in v1 if k not in ("publicMessage", "text")} == {
        k: v1[k] for k in v1 if k not in ("publicMessage", "text")
    }


def test_an_edited_private_or_direct_message_keeps_its_own_kind():
    direct = frames.direct_message("Alice", "Bob", "hi!", STAMP, "@5b0e")
    assert frames.edited_version(direct, "yo")["directMessage"] == "Alice: yo"
    private = frames.private_message("Alice", "Bob", "hi!", STAMP)
    assert frames.edited_version(private, "yo")["privateMessage"] == "Alice: yo"
    with pytest.raises(ValueError):
        frames.edited_version({"typing": "Alice"}, "x")


@pytest.mark.parametrize("edited_first", [False, True])
def test_a_deleted_lobby_message_reads_deleted_for_v1_readers_without_room_keys(edited_first):
    message = frames.room_message("Alice", "secret plan", STAMP, "lobby")
    if edited_first:
        message = frames.edited_version(message, "secret plan b")
    shown = frames.deleted_for_v1(message)
    assert shown == {
        "publicMessage": "Alice: (deleted)",
        "from": "Alice",
        "text": "(deleted)",
        "ts": STAMP.ts,
        "seq": STAMP.seq,
        "messageId": STAMP.message_id,
        "prev": STAMP.prev,
        "deleted": True,
    }
    assert "secret" not in json.dumps(shown)


def test_a_deleted_message_in_a_v2_history_is_a_message_deleted_frame_in_its_own_place():
    message = frames.edited_version(frames.room_message("Alice", "oops", STAMP, "dev"), "x")
    tombstone = frames.deleted_in_history(message, "dev")
    assert tombstone == {
        "messageDeleted": STAMP.message_id,
        "room": "dev",
        "of": STAMP.seq,
        "from": "Alice",
        "ts": STAMP.ts,
        "seq": STAMP.seq,
        "prev": STAMP.prev,
    }
    assert "oops" not in json.dumps(tombstone)


# --- splitting long replies ---------------------------------------------------------------


def long_name(i: int) -> str:
    # 32 characters of 4 bytes each in UTF-8: the longest room entries there can be.
    return f"{i:05d}" + "\U0001d41a" * 27


def test_a_long_rooms_list_is_split_into_frames_under_one_unit_that_add_up_to_the_lists():
    public = [ListedRoom(long_name(i), "public") for i in range(1000)]
    mine = [MyRoom(long_name(i), "private", last_read=i, unread=i % 150) for i in range(50)]
    invitations = [Invitation(long_name(i), long_name(i + 1)) for i in range(1000)]
    reply = frames.rooms_list(public, mine, invitations, complete=True, client_id="r9")
    assert len(reply) > 3
    sizes = [len(encode(frame)) for frame in reply]
    assert max(sizes) < UNIT
    assert all(frame["final"] is False for frame in reply[:-1])
    assert all("id" not in frame and "complete" not in frame for frame in reply[:-1])
    assert reply[-1]["final"] is True and reply[-1]["complete"] is True
    assert reply[-1]["id"] == "r9"
    joined = {part: [e for f in reply for e in f["rooms"][part]] for part in reply[0]["rooms"]}
    assert [e["room"] for e in joined["public"]] == [r.room for r in public]
    assert [e["lastRead"] for e in joined["mine"]] == list(range(50))
    assert [e["from"] for e in joined["invited"]] == [i.sender for i in invitations]
    # Packed: every frame but the last is near full.
    assert min(sizes[:-1]) > FRAME_BUDGET_BYTES - 1024


def test_every_part_of_a_rooms_list_has_all_three_lists_even_when_empty():
    reply = frames.rooms_list([], [], [], complete=True, client_id="r1")
    assert reply == [
        {
            "rooms": {"public": [], "mine": [], "invited": []},
            "final": True,
            "complete": True,
            "id": "r1",
        }
    ]


def test_a_rooms_list_cut_by_the_limit_says_it_is_not_complete():
    reply = frames.rooms_list([ListedRoom("dev", "public")], [], [], complete=False)
    assert reply[-1]["complete"] is False and "id" not in reply[-1]


@pytest.mark.parametrize(("unread", "shown"), [(0, 0), (4, 4), (99, 99), (100, 100), (5000, 100)])
def test_unread_counts_stop_at_the_cap_which_means_that_many_or_more(unread, shown):
    reply = frames.rooms_list([], [MyRoom("dev", "public", 1, unread)], [], complete=True)
    assert reply[0]["rooms"]["mine"][0]["unread"] == shown
    assert UNREAD_CAP == 100


def test_a_v2_history_reply_names_its_room_on_every_frame_and_splits_like_v1():
    messages = [
        frames.room_message("Alice", "x" * 3000, Stamp(i, f"m{i}", i, i - 1), "dev")
        for i in range(1, 40)
    ]
    v1 = frames.history(messages, complete=False, client_id="h2")
    v2 = frames.room_history(messages, "dev", complete=False, client_id="h2")
    assert len(v2) == len(v1) > 1
    assert [{k: v for k, v in f.items() if k != "room"} for f in v2] == v1
    assert all(list(f)[:2] == ["history", "room"] and f["room"] == "dev" for f in v2)
    assert all(len(encode(f)) < UNIT for f in v2)
    assert v2[-1]["id"] == "h2" and v2[-1]["complete"] is False
