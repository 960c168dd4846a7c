"""What the server API reads for operators: the rooms and their members.

The server API (lambda_src/admin.py, docs/operations.md "The server API") is IAM-signed:
whoever reaches it is an operator, so it sees every room a registry lists (public and
private) and any room's members, which no chat member can. Anything that changes the chat
(a post as the system, a moderation action) goes through `ChatService`, whose rules apply
to operators too.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from chat import rooms
from chat.errors import ChatError, ErrorCode
from chat.ports import ChatStore, Member

# The registry's page: at most this many rooms per answer (the registry is read in key
# order; `complete` is false when there are more).
ROOMS_LIMIT = 500


@dataclass(frozen=True)
class RoomMembers:
    """A room's key, its name as shown, its kind, and who is in it now."""

    key: str
    name: str
    kind: str
    members: list[Member]


class Operator:
    """Reads for the server API: one Query of the registry, or of one room's members."""

    def __init__(self, store: ChatStore, *, reserved: Collection[str]) -> None:
        self._store = store
        self._reserved = reserved

    def rooms(self, limit: int = ROOMS_LIMIT) -> dict[str, Any]:
        """The lobby and the registry's rooms (never direct rooms), and whether that is all."""
        listed, complete = self._store.public_rooms(limit)
        found = [{"room": r.name, "kind": r.kind, "createdAt": r.created_at} for r in listed]
        # The lobby first, whether or not a v2 join has written it into the registry.
        lobby = [entry for entry, r in zip(found, listed, strict=True) if r.room == rooms.LOBBY]
        others = [entry for entry, r in zip(found, listed, strict=True) if r.room != rooms.LOBBY]
        first = lobby or [{"room": rooms.LOBBY, "kind": rooms.RoomKind.PUBLIC.value}]
        return {"rooms": first[:1] + others, "complete": complete}

    def members(self, raw_room: object) -> RoomMembers:
        """The members of the room `raw_room` names (a name, a look-alike of one, or a
        direct room's id). Raises ChatError(INVALID_ROOM, ROOM_NOT_FOUND)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        if not ref.direct and rooms.is_lobby(ref.name):
            return RoomMembers(
                rooms.LOBBY,
                rooms.LOBBY,
                rooms.RoomKind.PUBLIC.value,
                self._store.list_members(rooms.LOBBY),
            )
        claim = () if ref.direct else rooms.room_claim_keys(ref.name)
        meta = self._store.room_meta(ref.key, claim)
        if meta is None:
            raise ChatError(ErrorCode.ROOM_NOT_FOUND, "There is no such room.")
        return RoomMembers(meta.key, meta.name, meta.kind, self._store.list_members(meta.key))
