"""Domain errors of the chat and the codes the client sees.

The errors a store raises live in `chat.ports` (the adapters raise them without importing
the rules); they are re-exported here for the rules.
"""

from __future__ import annotations

from enum import StrEnum

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
    # Protocol v2 (issue 16, docs/rooms-design.md): raised by chat.rooms; no handler sends it yet.
    INVALID_ROOM = "INVALID_ROOM"


class ChatError(Exception):
    """A request the chat refuses; `message` is safe to show to the client."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
