"""Server-to-client frames of protocol v1 (one JSON object per WebSocket frame)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chat.errors import ErrorCode

Frame = dict[str, Any]


def sort_names(names: Iterable[str]) -> list[str]:
    """Names sorted case-insensitively (ties broken by the exact text, so the order is total)."""
    return sorted(names, key=lambda n: (n.casefold(), n))


def members(names: Iterable[str]) -> Frame:
    return {"members": sort_names(names)}


def joined(name: str) -> Frame:
    return {"systemMessage": f"{name} has joined the chat", "event": "join", "name": name}


def left(name: str) -> Frame:
    return {"systemMessage": f"{name} has left the chat", "event": "leave", "name": name}


def renamed(previous: str, name: str) -> Frame:
    return {
        "systemMessage": f"{previous} is now known as {name}",
        "event": "rename",
        "name": name,
        "previous": previous,
    }


def public_message(sender: str, text: str, ts: int) -> Frame:
    return {"publicMessage": f"{sender}: {text}", "from": sender, "text": text, "ts": ts}


def private_message(sender: str, recipient: str, text: str, ts: int) -> Frame:
    return {
        "privateMessage": f"{sender}: {text}",
        "from": sender,
        "to": recipient,
        "text": text,
        "ts": ts,
    }


def error(
    code: ErrorCode, message: str, action: str | None, retry_after_ms: int | None = None
) -> Frame:
    detail: Frame = {"code": code.value, "message": message, "action": action}
    if retry_after_ms is not None:
        detail["retryAfterMs"] = retry_after_ms
    return {"error": detail}
