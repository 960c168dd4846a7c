"""Domain errors of the chat and the codes the client sees.

The errors a store raises live in `chat.ports` (the adapters raise them without importing
the rules); they are re-exported here for the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from chat.ports import ConcurrentUpdateError, NameOwnedError, NameTakenError, RoomFullError

__all__ = [
    "ChatError",
    "ConcurrentUpdateError",
    "ErrorCode",
    "NameOwnedError",
    "NameTakenError",
    "RoomFullError",
]


class ErrorCode(StrEnum):
    """Every error code a client can receive in an error frame."""

    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    INVALID_NAME = "INVALID_NAME"
    NAME_TAKEN = "NAME_TAKEN"
    NAME_REQUIRED = "NAME_REQUIRED"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    MESSAGE_TOO_LONG = "MESSAGE_TOO_LONG"
    UNKNOWN_RECIPIENT = "UNKNOWN_RECIPIENT"
    INVALID_ID = "INVALID_ID"
    RATE_LIMITED = "RATE_LIMITED"
    ROOM_FULL = "ROOM_FULL"
    NOT_CONNECTED = "NOT_CONNECTED"
    INTERNAL = "INTERNAL"
    # Protocol v2 (issue 16, docs/rooms-design.md §3): INVALID_ROOM is raised by chat.rooms,
    # the others by chat.service (store refusals mapped in ChatService._room_errors).
    INVALID_ROOM = "INVALID_ROOM"
    UNSUPPORTED_PROTOCOL = "UNSUPPORTED_PROTOCOL"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    ROOM_EXISTS = "ROOM_EXISTS"
    NOT_IN_ROOM = "NOT_IN_ROOM"
    TOO_MANY_ROOMS = "TOO_MANY_ROOMS"
    ROOM_LIMIT = "ROOM_LIMIT"
    UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"
    NOT_YOURS = "NOT_YOURS"
    EDIT_WINDOW_CLOSED = "EDIT_WINDOW_CLOSED"
    # Moderation (issue 17, chat.moderation): a `moderate` frame refused (NOT_MODERATOR,
    # INVALID_MODERATION), and a member's own frames refused by a moderator's action, each
    # with `retryAfterMs` (MUTED, BANNED, SLOW_MODE).
    NOT_MODERATOR = "NOT_MODERATOR"
    INVALID_MODERATION = "INVALID_MODERATION"
    MUTED = "MUTED"
    BANNED = "BANNED"
    SLOW_MODE = "SLOW_MODE"
    # The review hook (chat/review.py) denied a public message, or could not review it and
    # reviewHookFallback is deny: nothing was stored or posted.
    REJECTED = "REJECTED"


class ChatError(Exception):
    """A request the chat refuses; `message` is safe to show to the client. `details` are
    extra keys of the error frame (UNSUPPORTED_PROTOCOL's `supported`)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after_ms: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.details: dict[str, Any] = dict(details or {})
