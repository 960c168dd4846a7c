"""Domain errors of the chat and the codes the client sees."""

from __future__ import annotations

from enum import StrEnum


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


class ChatError(Exception):
    """A request the chat refuses; `message` is safe to show to the client."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


class NameTakenError(Exception):
    """Raised by a store when a live claim held by another connection blocks a name."""

    def __init__(self, holder_connection_id: str, holder_name: str, key: str) -> None:
        super().__init__(holder_name)
        self.holder_connection_id = holder_connection_id
        self.holder_name = holder_name
        self.key = key  # the claim key that is taken


class NameOwnedError(Exception):
    """Raised by a store when another account owns one of the name's keys (sign-in)."""


class RoomFullError(Exception):
    """Raised by a store when a join would take the room past its maximum size."""


class ConcurrentUpdateError(Exception):
    """Raised by a store when the connection changed under a write; the caller retries."""
