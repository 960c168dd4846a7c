"""API Gateway WebSocket events for the handler, built from the real fixtures in tests/events/."""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


@cache
def _fixture(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def _event(name: str, connection_id: str, **context: Any) -> dict[str, Any]:
    event = copy.deepcopy(_fixture(name))
    now = int(time.time() * 1000)
    event["requestContext"].update(
        connectionId=connection_id, connectedAt=now, requestTimeEpoch=now, **context
    )
    return event


def connect_event(connection_id: str) -> dict[str, Any]:
    return _event("connect", connection_id)


def disconnect_event(connection_id: str) -> dict[str, Any]:
    return _event("disconnect", connection_id)


def message_event(connection_id: str, body: Any, route_key: str | None = None) -> dict[str, Any]:
    """A MESSAGE event; `body` is sent as-is if it is a str, else as JSON.

    The route key is what API Gateway would select with `$request.body.action`
    for the stack's routes (a body that does not parse goes to `$default`), unless given.
    """
    raw = body if isinstance(body, str) else json.dumps(body)
    if route_key is None:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        action = parsed.get("action") if isinstance(parsed, dict) else None
        routes = {"setName", "sendPublic", "sendPrivate"}
        route_key = action if isinstance(action, str) and action in routes else "$default"
    event = _event("message", connection_id, routeKey=route_key)
    event["body"] = raw
    return event


class LambdaContext:
    """The attributes of Lambda's context object that the handler reads."""

    function_name = "ChatFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ChatFunction"
    aws_request_id = "3f8a2b1c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000
