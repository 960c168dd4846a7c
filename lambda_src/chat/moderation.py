"""Moderation (issue 17): the pure rules, with no storage and no API Gateway.

Who is a moderator, which operation each may do where and to whom, what a `moderate` frame
asks for, and the two checks a send makes (mute, slow mode). The service
(`ChatService.moderate`) reads and writes; everything it decides is decided here, so the
server API can call the same service method with the `SYSTEM` actor.

Ranks, lowest first: a member, a moderator the room's creator (or a stack moderator)
appointed, the room's creator, a stack moderator (sign-in group `moderatorGroup`), the
system (the server API). An actor may act on a target only of a lower rank: a room
moderator cannot kick the creator, nor a creator a stack moderator.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from chat.errors import ChatError, ErrorCode

__all__ = [
    "REASON_MAX_LENGTH",
    "SYSTEM",
    "TOPIC_MAX_LENGTH",
    "Actor",
    "Op",
    "Rank",
    "Request",
    "RoomAuthority",
    "Scope",
    "Target",
    "may_moderate",
    "may_target",
    "mute_wait_ms",
    "rank_in",
    "read_request",
    "role_of",
    "slow_mode_wait_ms",
]

REASON_MAX_LENGTH = 200
TOPIC_MAX_LENGTH = 200
# An announcement (the system's message in a room): a chat message's length at most.
ANNOUNCE_MAX_LENGTH = 1000
# A ban's `address`: an IPv4 or IPv6 address as API Gateway gives `sourceIp`.
ADDRESS_MAX_LENGTH = 64
SUB_MAX_LENGTH = 256


class Op(StrEnum):
    """A `moderate` frame's `op`."""

    DELETE = "delete"
    KICK = "kick"
    DISCONNECT = "disconnect"
    MUTE = "mute"
    UNMUTE = "unmute"
    BAN = "ban"
    UNBAN = "unban"
    SLOW_MODE = "slowMode"
    TOPIC = "topic"
    APPOINT = "appoint"
    DISMISS = "dismiss"
    ANNOUNCE = "announce"


class Scope(StrEnum):
    """Where a ban applies: one room, or the whole stack (stack moderators only)."""

    ROOM = "room"
    STACK = "stack"


class Target(StrEnum):
    """What a ban names: a chat name (by its look: its lookup key), an account, an address."""

    NAME = "name"
    SUB = "sub"
    ADDRESS = "address"


class Rank(IntEnum):
    MEMBER = 0
    ROOM_MODERATOR = 1
    CREATOR = 2
    STACK_MODERATOR = 3
    SYSTEM = 4


# Operations on a member who must be online (named by `target`).
ON_MEMBER = frozenset({Op.KICK, Op.DISCONNECT, Op.MUTE, Op.UNMUTE, Op.APPOINT, Op.DISMISS})
# Operations only stack moderators (and the system) may do, whatever the room.
STACK_ONLY = frozenset({Op.DISCONNECT})
# Operations only the room's creator (or a stack moderator) may do.
CREATOR_ONLY = frozenset({Op.APPOINT, Op.DISMISS})


@dataclass(frozen=True)
class Actor:
    """Who acts: the identity its grants hang on (a sender key, or `system`), the name the
    room is told (`by`), and whether its sign-in groups make it a stack moderator."""

    identity: str
    name: str
    stack_moderator: bool = False
    system: bool = False


SYSTEM = Actor("system", "system", stack_moderator=True, system=True)


@dataclass(frozen=True)
class RoomAuthority:
    """What a room's META says about who moderates it: its creator's identity (empty for
    the lobby and direct rooms) and the identities appointed."""

    creator: str = ""
    moderators: frozenset[str] = frozenset()


def rank_in(
    identity: str, *, stack_moderator: bool, room: RoomAuthority, system: bool = False
) -> Rank:
    """Someone's rank in a room."""
    if system:
        return Rank.SYSTEM
    if stack_moderator:
        return Rank.STACK_MODERATOR
    if room.creator and identity == room.creator:
        return Rank.CREATOR
    if identity in room.moderators:
        return Rank.ROOM_MODERATOR
    return Rank.MEMBER


# A rank above member as a v2 `joined` frame names it (`role`); stable names, part of the
# protocol (docs/protocol.md). A member has none, and the system never joins a room.
ROLES: Mapping[Rank, str] = {
    Rank.ROOM_MODERATOR: "moderator",
    Rank.CREATOR: "creator",
    Rank.STACK_MODERATOR: "stackModerator",
}


def role_of(rank: Rank) -> str | None:
    """The `role` a `joined` frame gives a rank (None for a member)."""
    return ROLES.get(rank)


def is_stack_moderator(groups: Collection[str], moderator_group: str) -> bool:
    """Whether a connection's sign-in groups make it a stack moderator (no group named, or
    no sign-in: nobody is)."""
    return bool(moderator_group) and moderator_group in groups


def may_moderate(actor: Actor, op: Op, room: RoomAuthority, *, scope: Scope = Scope.ROOM) -> bool:
    """Whether the actor may do `op` in the room (or, scope STACK, across the stack). The one
    place the permission is decided."""
    rank = rank_in(
        actor.identity, stack_moderator=actor.stack_moderator, room=room, system=actor.system
    )
    if op in STACK_ONLY or scope is Scope.STACK:
        return rank >= Rank.STACK_MODERATOR
    if op in CREATOR_ONLY:
        return rank >= Rank.CREATOR
    return rank >= Rank.ROOM_MODERATOR


def may_target(actor_rank: Rank, target_rank: Rank) -> bool:
    """Whether an actor of one rank may act on a member of another: only on a lower rank."""
    return actor_rank > target_rank


def mute_wait_ms(muted_until_ms: int, now_ms: int) -> int:
    """How long a muted member still waits (0: not muted)."""
    return max(0, muted_until_ms - now_ms)


def slow_mode_wait_ms(last_sent_ms: int | None, now_ms: int, interval_seconds: int) -> int:
    """How long a member waits before its next message in a room in slow mode (0: it may
    send now; an interval of 0 is off)."""
    if interval_seconds <= 0 or last_sent_ms is None:
        return 0
    return max(0, last_sent_ms + interval_seconds * 1000 - now_ms)


@dataclass(frozen=True)
class Request:
    """A `moderate` frame, validated: the op, where, on whom, for how long, why."""

    op: Op
    scope: Scope = Scope.ROOM
    target: str | None = None  # a member's name (kick, mute, ...), or a ban's value
    target_kind: Target = Target.NAME
    seconds: int = 0
    reason: str | None = None
    topic: str | None = None
    message_id: str | None = None
    seq: int | None = None
    text: str | None = None  # announce: the system message


def _invalid(message: str) -> ChatError:
    return ChatError(ErrorCode.INVALID_MODERATION, message)


def _text(raw: object, what: str, limit: int) -> str:
    """Short text validated as a message is: a string, no control, bidi formatting or
    surrogate characters, at most `limit` characters once trimmed (may be empty)."""
    if not isinstance(raw, str):
        raise _invalid(f"{what} must be a string.")
    text = raw.strip()
    if len(text) > limit:
        raise _invalid(f"{what} must be at most {limit} characters.")
    for char in text:
        code = ord(char)
        if (
            0xD800 <= code <= 0xDFFF
            or unicodedata.category(char) == "Cc"
            or 0x202A <= code <= 0x202E
            or 0x2066 <= code <= 0x2069
        ):
            raise _invalid(
                f"{what} must be text without control, bidirectional formatting or "
                "unpaired surrogate characters."
            )
    return text


def _seconds(raw: object, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise _invalid(f"seconds must be a whole number from {low} to {high}.")
    return raw


def read_request(
    body: Mapping[str, Any], *, max_seconds: int, slow_mode_max_seconds: int
) -> Request:
    """The `moderate` frame's request. Raises ChatError(INVALID_MODERATION) naming the field."""
    raw_op = body.get("op")
    try:
        op = Op(raw_op) if isinstance(raw_op, str) else None
    except ValueError:
        op = None
    if op is None:
        raise _invalid(f"op must be one of: {', '.join(o.value for o in Op)}.")
    raw_scope = body.get("scope", Scope.ROOM.value)
    if raw_scope not in (Scope.ROOM.value, Scope.STACK.value):
        raise _invalid('scope must be "room" or "stack".')
    scope = Scope(raw_scope)
    if scope is Scope.STACK and op not in (Op.BAN, Op.UNBAN):
        raise _invalid('Only ban and unban take scope "stack".')
    reason = body.get("reason")
    fields: dict[str, Any] = {"op": op, "scope": scope}
    if reason is not None:
        fields["reason"] = _text(reason, "reason", REASON_MAX_LENGTH) or None
    if op in ON_MEMBER:
        target = body.get("target")
        if not isinstance(target, str) or not target.strip() or len(target) > 128:
            raise _invalid("Say whom (target: a member's name).")
        fields["target"] = target.strip()
    if op in (Op.MUTE, Op.BAN):
        fields["seconds"] = _seconds(body.get("seconds"), 1, max_seconds)
    if op in (Op.BAN, Op.UNBAN):
        named = [kind for kind in Target if body.get(kind.value) is not None]
        if len(named) != 1:
            raise _invalid("A ban names one of: name, sub, address.")
        kind = named[0]
        value = body[kind.value]
        limit = {Target.NAME: 128, Target.SUB: SUB_MAX_LENGTH, Target.ADDRESS: ADDRESS_MAX_LENGTH}
        if not isinstance(value, str) or not value.strip() or len(value) > limit[kind]:
            raise _invalid(f"{kind.value} must be a non-empty string.")
        fields["target"] = value.strip()
        fields["target_kind"] = kind
    fields.update(_content(op, body, slow_mode_max_seconds))
    return Request(**fields)


def _content(op: Op, body: Mapping[str, Any], slow_mode_max_seconds: int) -> dict[str, Any]:
    """The fields of the ops that carry content: slow mode's interval, an announcement's
    text, a topic, the message a delete names."""
    found: dict[str, Any] = {}
    if op is Op.SLOW_MODE:
        found["seconds"] = _seconds(body.get("seconds"), 0, slow_mode_max_seconds)
    if op is Op.ANNOUNCE:
        text = _text(body.get("message"), "message", ANNOUNCE_MAX_LENGTH)
        if not text:
            raise _invalid("Say what to announce (message).")
        found["text"] = text
    if op is Op.TOPIC:
        found["topic"] = _text(body.get("topic"), "topic", TOPIC_MAX_LENGTH) or None
    if op is Op.DELETE:
        seq = body.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**53:
            raise ChatError(ErrorCode.INVALID_ID, "seq must be a whole number of at least 0.")
        message_id = body.get("messageId")
        if not isinstance(message_id, str) or not 1 <= len(message_id) <= 64:
            raise ChatError(ErrorCode.UNKNOWN_MESSAGE, "No such message in this room's history.")
        found["seq"] = seq
        found["message_id"] = message_id
    return found
