"""Rooms of protocol v2 (issue 16): the pure rules, with no storage and no API Gateway.

Room names and their keys, the kinds of room, who may see and join one, a direct room's id,
the window for editing one's own messages and the typing throttle. The design, and why each
rule is the one chosen, is docs/rooms-design.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from chat.errors import ChatError, ErrorCode
from chat.names import DEFAULT_RESERVED_NAMES, claim_keys, lookup_key, validate_name

__all__ = [
    "CLOCK_SKEW_MS",
    "DIRECT_PREFIX",
    "GROUP_MAX_LENGTH",
    "LOBBY",
    "LOBBY_ROOM",
    "Room",
    "RoomKind",
    "RoomRef",
    "Visitor",
    "creatable_kind",
    "direct_room",
    "direct_room_id",
    "is_direct_id",
    "is_lobby",
    "may_join",
    "may_see",
    "read_room",
    "room_claim_keys",
    "room_key",
    "rooms_clash",
    "typing_allowed",
    "validate_group",
    "validate_room_name",
    "within_edit_window",
]

# The default room: v1 and v1.1 clients are in it and nowhere else. Its key is its name, so
# its partitions are the ones chat.store has always written (ROOM#lobby, HIST#lobby).
LOBBY = "lobby"
# A direct room's id: "@" and 32 hex digits (128 bits of SHA-256). No room name starts with
# "@", so a direct id never names another room.
DIRECT_PREFIX = "@"
DIRECT_ID = re.compile(r"@[0-9a-f]{32}")
# Separates the parts of a table key (ROOM#<key>#<shard>): never in a room key.
KEY_SEPARATOR = "#"
# A token claim value (for example a Cognito group) that admits to a private room. The
# authorizer passes a connection's groups comma-joined, so a group has no comma.
GROUP_MAX_LENGTH = 128
GROUP = re.compile(r"[!-+\--~](?:[ -+\--~]*[!-+\--~])?")
# Message timestamps come from different Lambda hosts' clocks: one slightly in the future
# is a clock, not a forgery (the server writes `ts` itself).
CLOCK_SKEW_MS = 5000


class RoomKind(StrEnum):
    """Who can find and enter a room."""

    PUBLIC = "public"  # listed; anyone named may join
    PRIVATE = "private"  # unlisted; by invitation, or by a token claim the room names
    DIRECT = "direct"  # two people; made by the first message between them


@dataclass(frozen=True)
class Room:
    """A room as its metadata describes it."""

    key: str
    name: str
    kind: RoomKind
    group: str | None = None  # private: the token claim value that admits
    parties: frozenset[str] = frozenset()  # direct: the two identities


@dataclass(frozen=True)
class Visitor:
    """Someone asking to see or join a room: the identity its grants hang on (the sender
    key: `sub#...` with sign-in, `key#<clientKey>`, else `conn#<connectionId>`), the
    groups its token carries, and the keys of the rooms it holds an invitation to."""

    identity: str
    groups: frozenset[str] = frozenset()
    invited: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoomRef:
    """What a frame's `room` names: a room's key, the name as shown, and whether it is a
    direct room's id (whose name is its id)."""

    key: str
    name: str
    direct: bool


LOBBY_ROOM = Room(key=LOBBY, name=LOBBY, kind=RoomKind.PUBLIC)


def validate_room_name(raw: object, *, reserved: Collection[str] = DEFAULT_RESERVED_NAMES) -> str:
    """The room name to show (trimmed, NFC). Raises ChatError(INVALID_ROOM) with the reason.

    A room name follows every rule of a chat name (chat.names.validate_name: one script,
    nothing invisible, not a reserved name nor a look-alike of one), and also has no `#`
    and does not start with `@`, nor do its keys (so the full-width U+FF03 and U+FF20 are
    refused too). No message repeats the name.
    """
    try:
        name = validate_name(raw, reserved=reserved)
    except ChatError as error:
        raise _invalid(error.message.replace("A name", "A room name", 1)) from None
    keys = claim_keys(name)
    if KEY_SEPARATOR in name or any(KEY_SEPARATOR in key for key in keys):
        raise _invalid(f'A room name must not contain "{KEY_SEPARATOR}" or a look-alike of it.')
    if name.startswith(DIRECT_PREFIX) or any(key.startswith(DIRECT_PREFIX) for key in keys):
        raise _invalid(f'A room name must not start with "{DIRECT_PREFIX}" or a look-alike of it.')
    return name


def room_key(name: str) -> str:
    """The key of a valid room name, its partitions' name: the first of its claim keys, so
    `Dev`, `DEV` and `DEV` in full-width letters are all `dev`."""
    return lookup_key(name)


def room_claim_keys(name: str) -> tuple[str, ...]:
    """The keys a valid room name occupies (one `ROOMKEY#<key>` item each): a name's claim
    keys. A room may be made only when none of them is another room's."""
    return claim_keys(name)


def rooms_clash(first: str, second: str) -> bool:
    """Whether two valid room names look alike, so that they name one room: their claim
    keys overlap (`aIice` with a capital I and `alice`, though their room keys differ)."""
    return not set(room_claim_keys(first)).isdisjoint(room_claim_keys(second))


def is_lobby(name: str) -> bool:
    """Whether a valid room name is the lobby's, or looks like it. The lobby exists without
    a `ROOMKEY#` item (tables made before rooms have none), so this needs no read."""
    return rooms_clash(name, LOBBY)


def is_direct_id(raw: object) -> bool:
    """Whether `raw` is a direct room's id as direct_room_id makes them."""
    return isinstance(raw, str) and DIRECT_ID.fullmatch(raw) is not None


def read_room(raw: object, *, reserved: Collection[str] = DEFAULT_RESERVED_NAMES) -> RoomRef:
    """What a frame's `room` names. Raises ChatError(INVALID_ROOM)."""
    if raw is None:
        raise _invalid("Say which room (room).")
    if is_direct_id(raw):
        assert isinstance(raw, str)
        return RoomRef(key=raw, name=raw, direct=True)
    name = validate_room_name(raw, reserved=reserved)
    return RoomRef(key=room_key(name), name=name, direct=False)


def creatable_kind(raw: object) -> RoomKind:
    """The kind a `createRoom` asks for (absent: private). Raises ChatError(INVALID_ROOM):
    a direct room is made by a message, never by createRoom."""
    if raw is None:
        return RoomKind.PRIVATE
    if raw in (RoomKind.PUBLIC.value, RoomKind.PRIVATE.value):
        return RoomKind(raw)
    raise _invalid('A room\'s kind must be "public" or "private" (kind).')


def validate_group(raw: object) -> str | None:
    """A private room's `group`: 1-128 printable ASCII characters without a comma, not
    starting or ending with a space (None when absent). Raises ChatError(INVALID_ROOM)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > GROUP_MAX_LENGTH or not GROUP.fullmatch(raw):
        raise _invalid(
            f"A group must be 1-{GROUP_MAX_LENGTH} printable ASCII characters without a comma."
        )
    return raw


def direct_room_id(first: str, second: str) -> str:
    """The id of the direct room of two identities, the same whichever is given first.

    Made from the identities (sender keys), never from names: the next person to take a
    name must not inherit its conversations. The two are hashed as a JSON list, so no
    pair of identities can be spelled like another pair.
    """
    if not first or not second:
        raise ValueError("a direct room needs two identities")
    pair = json.dumps(sorted((first, second)), ensure_ascii=True)
    return DIRECT_PREFIX + hashlib.sha256(pair.encode("ascii")).hexdigest()[:32]


def direct_room(first: str, second: str) -> Room:
    """The direct room of two identities (a room of one when they are the same)."""
    key = direct_room_id(first, second)
    return Room(key=key, name=key, kind=RoomKind.DIRECT, parties=frozenset((first, second)))


def may_join(room: Room, visitor: Visitor) -> bool:
    """Whether the visitor may join: anyone a public room; a private room with an invitation
    to it, or when the room names a group the visitor's token carries; a direct room only
    its two parties."""
    if room.kind is RoomKind.PUBLIC:
        return True
    if room.kind is RoomKind.PRIVATE:
        return room.key in visitor.invited or (
            room.group is not None and room.group in visitor.groups
        )
    return visitor.identity in room.parties


def may_see(room: Room, visitor: Visitor) -> bool:
    """Whether the room exists as far as the visitor is told: public rooms for everyone,
    the others only for those who may join them (ROOM_NOT_FOUND for anyone else)."""
    return room.kind is RoomKind.PUBLIC or may_join(room, visitor)


def within_edit_window(sent_ms: int, now_ms: int, window_seconds: int) -> bool:
    """Whether a message sent at `sent_ms` may still be edited or deleted at `now_ms`:
    strictly less than the window has passed. A window of 0 allows nothing; a message
    stamped more than CLOCK_SKEW_MS in the future is refused."""
    if window_seconds <= 0:
        return False
    elapsed = now_ms - sent_ms
    return -CLOCK_SKEW_MS <= elapsed < window_seconds * 1000


def typing_allowed(last_sent_ms: int | None, now_ms: int, interval_seconds: float) -> bool:
    """Whether a typing indicator may go out now, given when this sender's last one did
    (None: never): at most one per interval. The same decision as a token bucket of one
    token refilled once per interval, which is how the store keeps it."""
    if interval_seconds <= 0:
        raise ValueError("the typing interval must be positive")
    if last_sent_ms is None:
        return True
    return now_ms - last_sent_ms >= round(interval_seconds * 1000)


def _invalid(message: str) -> ChatError:
    return ChatError(ErrorCode.INVALID_ROOM, message)
