"""Server-to-client frames of protocols v1.1 and v2 (one JSON object per WebSocket frame).

The v2 frames (rooms, docs/rooms-design.md §3) carry `room`; a v2 frame that is a v1 frame
plus `room` is built from the v1 builder, whose output stays as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from chat.errors import ErrorCode
from chat.ports import Frame, encode  # defined with the ports, re-exported for the rules

__all__ = [
    "DELETED_TEXT",
    "FRAME_BUDGET_BYTES",
    "SUPPORTED_PROTOCOLS",
    "UNREAD_CAP",
    "Frame",
    "Invitation",
    "ListedRoom",
    "MyRoom",
    "Stamp",
    "ack",
    "delete_ack",
    "deleted_for_v1",
    "deleted_in_history",
    "direct_message",
    "edit_ack",
    "edited_version",
    "encode",
    "error",
    "history",
    "invite_ack",
    "invited",
    "joined",
    "left",
    "mark_read_ack",
    "member_pages",
    "members",
    "message_deleted",
    "message_edited",
    "moderate_ack",
    "moderation",
    "new_event_id",
    "presence",
    "private_message",
    "protocol_ack",
    "public_message",
    "renamed",
    "room_history",
    "room_joined",
    "room_left",
    "room_member_pages",
    "room_members",
    "room_message",
    "room_notice_joined",
    "room_notice_left",
    "room_notice_renamed",
    "rooms_list",
    "sort_names",
    "typing",
    "unsupported_protocol_details",
    "with_id",
]

T = TypeVar("T")

# One API Gateway billing unit; history frames are packed to stay under it.
FRAME_BUDGET_BYTES = 32 * 1024 - 512
# The protocol versions a joining setName may ask for (`protocol`).
SUPPORTED_PROTOCOLS = (1, 2)
# A rooms list counts unread messages up to this many; the cap means "this many or more".
UNREAD_CAP = 100
# The text a deleted message shows to v1 readers of the lobby's history.
DELETED_TEXT = "(deleted)"


@dataclass(frozen=True)
class Stamp:
    """What the server gives a message: its place in the room's order and its id."""

    seq: int
    message_id: str
    ts: int
    prev: int = 0  # v1: the previous public message; v2: the previous history event


def sort_names(names: Iterable[str]) -> list[str]:
    """Names sorted case-insensitively (ties broken by the exact text, so the order is total)."""
    return sorted(names, key=lambda n: (n.casefold(), n))


def new_event_id() -> str:
    """The identity of one event sent to many members: every copy of its frames carries it,
    so a client drops a frame it has already applied (a post is at most once, but a member
    can still see one twice, e.g. after a reconnect; docs/protocol.md)."""
    return uuid.uuid4().hex[:16]


def members(names: Iterable[str], event_id: str | None = None) -> Frame:
    return {"members": sort_names(names), "eventId": event_id or new_event_id()}


def member_pages(names: Iterable[str], event_id: str | None = None) -> list[Frame]:
    """The whole member list for a big room, sorted, in parts that each fit one 32 KB unit;
    the parts share one `eventId`."""
    event_id = event_id or new_event_id()
    parts: list[list[str]] = [[]]
    size = 0
    for name in sort_names(names):
        cost = len(encode(name)) + 1
        if parts[-1] and size + cost > FRAME_BUDGET_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(name)
        size += cost
    return [
        {"memberList": part, "part": index, "parts": len(parts), "eventId": event_id}
        for index, part in enumerate(parts, start=1)
    ]


def joined(name: str, event_id: str | None = None) -> Frame:
    return {
        "systemMessage": f"{name} has joined the chat",
        "event": "join",
        "name": name,
        "eventId": event_id or new_event_id(),
    }


def left(name: str, event_id: str | None = None) -> Frame:
    return {
        "systemMessage": f"{name} has left the chat",
        "event": "leave",
        "name": name,
        "eventId": event_id or new_event_id(),
    }


def renamed(previous: str, name: str, event_id: str | None = None) -> Frame:
    return {
        "systemMessage": f"{previous} is now known as {name}",
        "event": "rename",
        "name": name,
        "previous": previous,
        "eventId": event_id or new_event_id(),
    }


def public_message(sender: str, text: str, stamp: Stamp) -> Frame:
    return {
        "publicMessage": f"{sender}: {text}",
        "from": sender,
        "text": text,
        "ts": stamp.ts,
        "seq": stamp.seq,
        "messageId": stamp.message_id,
        "prev": stamp.prev,
    }


def private_message(sender: str, recipient: str, text: str, stamp: Stamp) -> Frame:
    return {
        "privateMessage": f"{sender}: {text}",
        "from": sender,
        "to": recipient,
        "text": text,
        "ts": stamp.ts,
        "seq": stamp.seq,
        "messageId": stamp.message_id,
    }


def with_id(frame: Frame, client_id: str | None) -> Frame:
    """The frame as its sender's acknowledgement: with the client's `id`, when it gave one."""
    return frame if client_id is None else {**frame, "id": client_id}


def ack(action: str, client_id: str, **details: Any) -> Frame:
    return {"ack": action, "id": client_id, **details}


def history(
    messages: Sequence[Frame], *, complete: bool, client_id: str | None = None
) -> list[Frame]:
    """Public messages, oldest first, packed into frames under one 32 KB billing unit.

    Every frame but the last has `final: false`; the last says whether the list is
    `complete` and carries the request's `id`.
    """
    batches = _pack(messages, lambda message: len(encode(message)) + 1)
    out: list[Frame] = [{"history": batch, "final": False} for batch in batches]
    out[-1] = with_id({"history": batches[-1], "final": True, "complete": complete}, client_id)
    return out


def _pack(items: Iterable[T], cost: Callable[[T], int]) -> list[list[T]]:
    """The items in order, in batches whose costs add up to at most FRAME_BUDGET_BYTES (an
    item over it alone in its batch); always at least one batch, maybe empty."""
    batches: list[list[T]] = [[]]
    size = 0
    for item in items:
        item_cost = cost(item)
        if batches[-1] and size + item_cost > FRAME_BUDGET_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item_cost
    return batches


def error(
    code: ErrorCode,
    message: str,
    action: str | None,
    retry_after_ms: int | None = None,
    client_id: str | None = None,
    *,
    details: Mapping[str, Any] | None = None,
) -> Frame:
    """An error frame; `details` are the code's own keys (ChatError.details), before `id`."""
    detail: Frame = {"code": code.value, "message": message, "action": action}
    if retry_after_ms is not None:
        detail["retryAfterMs"] = retry_after_ms
    if details:
        detail.update(details)
    if client_id is not None:
        detail["id"] = client_id
    return {"error": detail}


def unsupported_protocol_details() -> Frame:
    """UNSUPPORTED_PROTOCOL's own key: the versions this server speaks."""
    return {"supported": list(SUPPORTED_PROTOCOLS)}


# --- protocol v2: rooms (docs/rooms-design.md §3) ----------------------------------------
# `room` is the room's display name, or a direct room's `@…` id.


def _in_room(frame: Frame, room: str, *, before: str | None = None) -> Frame:
    """The frame with `room` after its first key (what kind of frame it is), or just
    before the key `before`."""
    items = list(frame.items())
    at = 1 if before is None else [key for key, _ in items].index(before)
    items.insert(at, ("room", room))
    return dict(items)


def protocol_ack(client_id: str, name: str, protocol: int) -> Frame:
    """A joining setName's acknowledgement that says which protocol was agreed."""
    return ack("setName", client_id, name=name, protocol=protocol)


def room_joined(
    room: str,
    kind: str,
    *,
    count: int,
    seq: int,
    last_read: int,
    client_id: str | None = None,
    topic: str | None = None,
    role: str | None = None,
    group: str | None = None,
) -> Frame:
    """The acknowledgement of joinRoom (and of createRoom, which joins the room it makes):
    the room's kind, its member count, its last `seq` and the joiner's last-read `seq`; the
    joiner's `role` in the room when it moderates it (`chat.moderation.ROLES`: absent for a
    plain member); a private room's sign-in `group` when one admits people to it; its
    `topic` when a moderator set one."""
    frame: Frame = {
        "joined": room,
        "room": room,
        "kind": kind,
        "count": count,
        "seq": seq,
        "lastRead": last_read,
    }
    if role:
        frame["role"] = role
    if group:
        frame["group"] = group
    if topic:
        frame["topic"] = topic
    return with_id(frame, client_id)


def room_left(room: str, client_id: str | None = None) -> Frame:
    """The acknowledgement of leaveRoom."""
    return with_id({"left": room, "room": room}, client_id)


def room_members(names: Iterable[str], room: str, event_id: str | None = None) -> Frame:
    return _in_room(members(names, event_id), room)


def room_member_pages(names: Iterable[str], room: str, event_id: str | None = None) -> list[Frame]:
    """A big room's member list in parts under one 32 KB unit each (room names are at
    most 32 characters, inside the budget's margin)."""
    return [_in_room(part, room) for part in member_pages(names, event_id)]


def presence(
    room: str,
    count: int,
    joined: Iterable[str] = (),
    left: Iterable[str] = (),
    event_id: str | None = None,
) -> Frame:
    """A change in a room above `memberListThreshold`: the count and who joined or left."""
    change = {"count": count, "joined": sort_names(joined), "left": sort_names(left)}
    return {"presence": change, "room": room, "eventId": event_id or new_event_id()}


def room_notice_joined(name: str, room: str, event_id: str | None = None) -> Frame:
    frame = _in_room(joined(name, event_id), room, before="eventId")
    frame["systemMessage"] = f"{name} has joined {room}"
    return frame


def room_notice_left(name: str, room: str, event_id: str | None = None) -> Frame:
    frame = _in_room(left(name, event_id), room, before="eventId")
    frame["systemMessage"] = f"{name} has left {room}"
    return frame


def room_notice_renamed(previous: str, name: str, room: str, event_id: str | None = None) -> Frame:
    return _in_room(renamed(previous, name, event_id), room, before="eventId")


def typing(name: str, room: str, ts: int) -> Frame:
    """Someone is typing in the room (never stored, never acknowledged)."""
    return {"typing": name, "room": room, "ts": ts}


def room_message(sender: str, text: str, stamp: Stamp, room: str) -> Frame:
    """A v2 publicMessage; `stamp.prev` is the room's previous history event of any kind."""
    return _in_room(public_message(sender, text, stamp), room)


def direct_message(sender: str, recipient: str, text: str, stamp: Stamp, room: str) -> Frame:
    """A private message as a v2 recipient gets it: in the direct room `room` (`@…`), with
    that room's `seq` and `prev`."""
    frame = _in_room(private_message(sender, recipient, text, stamp), room)
    frame = {("directMessage" if key == "privateMessage" else key): v for key, v in frame.items()}
    frame["prev"] = stamp.prev
    return frame


def message_edited(
    sender: str, text: str, *, of: int, stamp: Stamp, room: str, event_id: str | None = None
) -> Frame:
    """The event of an edit: `stamp.message_id` and `of` name the message (its id and
    `seq`); `stamp.seq` is the edit's own place in the room's sequence."""
    return {
        "messageEdited": stamp.message_id,
        "room": room,
        "of": of,
        "from": sender,
        "text": text,
        "ts": stamp.ts,
        "seq": stamp.seq,
        "prev": stamp.prev,
        "eventId": event_id or new_event_id(),
    }


def message_deleted(
    sender: str, *, of: int, stamp: Stamp, room: str, event_id: str | None = None
) -> Frame:
    """The event of a delete, named as an edit's is."""
    return {
        "messageDeleted": stamp.message_id,
        "room": room,
        "of": of,
        "from": sender,
        "ts": stamp.ts,
        "seq": stamp.seq,
        "prev": stamp.prev,
        "eventId": event_id or new_event_id(),
    }


def _message_key(message: Frame) -> str:
    for key in ("publicMessage", "directMessage", "privateMessage"):
        if key in message:
            return key
    raise ValueError("not a message frame")


def edited_version(message: Frame, text: str) -> Frame:
    """A stored message frame (v1 or v2, public or private) at its latest version: the new
    text in both text keys and `"edited": true`; every other key as it was."""
    key = _message_key(message)
    frame = {**message, key: f"{message['from']}: {text}", "text": text}
    frame["edited"] = True
    return frame


def deleted_for_v1(message: Frame) -> Frame:
    """A deleted lobby message as v1 readers of the history get it: an ordinary
    publicMessage whose text is DELETED_TEXT, with `"deleted": true` (a key they ignore),
    without `room` and `edited`."""
    frame = {k: v for k, v in message.items() if k not in ("room", "edited", "deleted")}
    key = _message_key(frame)
    frame.update({key: f"{frame['from']}: {DELETED_TEXT}", "text": DELETED_TEXT})
    frame["deleted"] = True
    return frame


def deleted_in_history(message: Frame, room: str) -> Frame:
    """A deleted message as v2 readers of the history get it, in its own place: a
    messageDeleted frame whose `of` is its own `seq`, with its sender, `ts` and `prev`."""
    return {
        "messageDeleted": message["messageId"],
        "room": room,
        "of": message["seq"],
        "from": message["from"],
        "ts": message["ts"],
        "seq": message["seq"],
        "prev": message.get("prev", 0),
    }


def room_history(
    messages: Sequence[Frame], room: str, *, complete: bool, client_id: str | None = None
) -> list[Frame]:
    """A v2 history reply: the room's messages and events after `since`, split as `history`
    splits them, each frame naming the room."""
    return [
        _in_room(frame, room) for frame in history(messages, complete=complete, client_id=client_id)
    ]


@dataclass(frozen=True)
class ListedRoom:
    """A room of the registry, in a rooms list's `public` part."""

    room: str
    kind: str
    topic: str | None = None


@dataclass(frozen=True)
class MyRoom:
    """A room of the caller's read state: `unread` counts the messages after `last_read`
    (capped at UNREAD_CAP); a direct room names the other party (`with`)."""

    room: str
    kind: str
    last_read: int
    unread: int
    with_name: str | None = None


@dataclass(frozen=True)
class Invitation:
    """A grant the caller holds: the room, and who invited them."""

    room: str
    sender: str


def _room_entries(
    public: Iterable[ListedRoom], mine: Iterable[MyRoom], invitations: Iterable[Invitation]
) -> list[tuple[str, Frame]]:
    entries: list[tuple[str, Frame]] = [
        ("public", {"room": r.room, "kind": r.kind, **({"topic": r.topic} if r.topic else {})})
        for r in public
    ]
    for r in mine:
        entry: Frame = {"room": r.room, "kind": r.kind}
        if r.with_name is not None:
            entry["with"] = r.with_name
        entry["lastRead"] = r.last_read
        entry["unread"] = max(0, min(r.unread, UNREAD_CAP))
        entries.append(("mine", entry))
    entries.extend(("invited", {"room": i.room, "from": i.sender}) for i in invitations)
    return entries


def rooms_list(
    public: Iterable[ListedRoom],
    mine: Iterable[MyRoom],
    invitations: Iterable[Invitation],
    *,
    complete: bool,
    client_id: str | None = None,
) -> list[Frame]:
    """The reply to listRooms, split like a history reply: frames under one 32 KB unit,
    each with the three lists (parts of them, in order; a client appends them), every one
    but the last `final: false`; the last says whether `complete` and carries the `id`.
    `complete` is false when `roomsListLimit` cut a list."""
    batches = _pack(_room_entries(public, mine, invitations), lambda e: len(encode(e[1])) + 1)
    out: list[Frame] = []
    for batch in batches:
        lists: dict[str, list[Frame]] = {"public": [], "mine": [], "invited": []}
        for part, entry in batch:
            lists[part].append(entry)
        out.append({"rooms": lists, "final": False})
    out[-1] = with_id({"rooms": out[-1]["rooms"], "final": True, "complete": complete}, client_id)
    return out


def invited(room: str, sender: str, event_id: str | None = None) -> Frame:
    """Tells a member that `sender` invited them to the room."""
    return {"invited": room, "room": room, "from": sender, "eventId": event_id or new_event_id()}


def invite_ack(client_id: str, room: str, to: str) -> Frame:
    return ack("invite", client_id, room=room, to=to)


def edit_ack(client_id: str, room: str, seq: int, message_id: str) -> Frame:
    """`seq` is the edit event's; `message_id` the edited message's."""
    return ack("editMessage", client_id, room=room, seq=seq, messageId=message_id)


def delete_ack(client_id: str, room: str, seq: int, message_id: str) -> Frame:
    return ack("deleteMessage", client_id, room=room, seq=seq, messageId=message_id)


def mark_read_ack(client_id: str, room: str, seq: int) -> Frame:
    return ack("markRead", client_id, room=room, seq=seq)


# --- moderation (issue 17, chat.moderation; docs/protocol.md "Moderation") -----------------

# What each operation's announcement says, for clients that show `systemMessage` as is.
_MODERATION_TEXT = {
    "kick": "{target} was removed from {room} by {by}",
    "disconnect": "{target} was disconnected by {by}",
    "mute": "{target} was muted in {room} by {by}",
    "unmute": "{target} may speak again in {room} ({by})",
    "ban": "{target} was banned from {room} by {by}",
    "unban": "{target} is no longer banned from {room} ({by})",
    "slowMode": "Slow mode in {room} is now {seconds} seconds ({by})",
    "topic": "{by} set the topic of {room}",
    "appoint": "{target} is now a moderator of {room} ({by})",
    "dismiss": "{target} is no longer a moderator of {room} ({by})",
}


def moderation(
    op: str,
    room: str,
    by: str,
    stamp: Stamp,
    *,
    target: str | None = None,
    target_kind: str | None = None,
    seconds: int | None = None,
    topic: str | None = None,
    reason: str | None = None,
    event_id: str | None = None,
    message: str | None = None,
) -> Frame:
    """A moderation action announced in the room, with its own seq (history keeps it). A ban
    of an account or an address names neither (`targetKind` says which it was)."""
    frame: Frame = {"moderation": op, "room": room, "by": by}
    if target is not None:
        frame["target"] = target
    if target_kind is not None:
        frame["targetKind"] = target_kind
    if seconds is not None:
        frame["seconds"] = seconds
    if op == "topic":
        frame["topic"] = topic
    if reason:
        frame["reason"] = reason
    kind = "account" if target_kind == "sub" else target_kind
    shown = target if target is not None else f"an {kind}"
    if op == "slowMode" and not seconds:
        text = f"Slow mode in {room} is off ({by})"
    elif op == "announce":
        text = message or ""
    elif op == "topic" and not topic:
        text = f"{by} cleared the topic of {room}"
    else:
        text = _MODERATION_TEXT[op].format(target=shown, room=room, by=by, seconds=seconds)
    frame.update(
        {
            "systemMessage": text,
            "ts": stamp.ts,
            "seq": stamp.seq,
            "prev": stamp.prev,
            "eventId": event_id or new_event_id(),
        }
    )
    return frame


def moderate_ack(client_id: str, op: str, room: str | None, seq: int | None) -> Frame:
    """The acknowledgement of `moderate`: the announcement's seq (none for a stack ban)."""
    details: Frame = {"op": op}
    if room is not None:
        details["room"] = room
    if seq is not None:
        details["seq"] = seq
    return ack("moderate", client_id, **details)
