"""Server-to-client frames of protocol v1.1 (one JSON object per WebSocket frame)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chat.errors import ErrorCode
from chat.ports import Frame, encode  # defined with the ports, re-exported for the rules

__all__ = [
    "FRAME_BUDGET_BYTES",
    "Frame",
    "Stamp",
    "ack",
    "encode",
    "error",
    "history",
    "joined",
    "left",
    "member_pages",
    "members",
    "new_event_id",
    "private_message",
    "public_message",
    "renamed",
    "sort_names",
    "with_id",
]

# One API Gateway billing unit; history frames are packed to stay under it.
FRAME_BUDGET_BYTES = 32 * 1024 - 512


@dataclass(frozen=True)
class Stamp:
    """What the server gives a message: its place in the room's order and its id."""

    seq: int
    message_id: str
    ts: int
    prev: int = 0  # the room's previous public message (public messages only)


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
    batches: list[list[Frame]] = [[]]
    size = 0
    for message in messages:
        cost = len(encode(message)) + 1
        if batches[-1] and size + cost > FRAME_BUDGET_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += cost
    out: list[Frame] = [{"history": batch, "final": False} for batch in batches]
    out[-1] = with_id({"history": batches[-1], "final": True, "complete": complete}, client_id)
    return out


def error(
    code: ErrorCode,
    message: str,
    action: str | None,
    retry_after_ms: int | None = None,
    client_id: str | None = None,
) -> Frame:
    detail: Frame = {"code": code.value, "message": message, "action": action}
    if retry_after_ms is not None:
        detail["retryAfterMs"] = retry_after_ms
    if client_id is not None:
        detail["id"] = client_id
    return {"error": detail}
