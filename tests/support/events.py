"""API Gateway WebSocket events for the handler, built from the real fixtures in tests/events/."""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from handler import ROUTED_ACTIONS

EVENTS = Path(__file__).resolve().parent.parent / "events"


@cache
def _fixture(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def _event(
    name: str, connection_id: str, source_ip: str | None = None, **context: Any
) -> dict[str, Any]:
    """The fixture `name` for this connection; `source_ip` replaces the fixture's client
    address (203.0.113.7) where API Gateway reports it: `identity.sourceIp`, and on
    $connect the X-Forwarded-For header."""
    event = copy.deepcopy(_fixture(name))
    now = int(time.time() * 1000)
    request = event["requestContext"]
    request.update(connectionId=connection_id, connectedAt=now, requestTimeEpoch=now, **context)
    if source_ip is not None:
        request.setdefault("identity", {})["sourceIp"] = source_ip
        if (event.get("headers") or {}).get("X-Forwarded-For"):  # empty on $disconnect
            event["headers"]["X-Forwarded-For"] = source_ip
            event["multiValueHeaders"]["X-Forwarded-For"] = [source_ip]
    return event


def connect_event(connection_id: str, *, source_ip: str | None = None) -> dict[str, Any]:
    """A $connect event; from `source_ip` when given, else from the fixture's address."""
    return _event("connect", connection_id, source_ip)


def disconnect_event(connection_id: str, *, source_ip: str | None = None) -> dict[str, Any]:
    return _event("disconnect", connection_id, source_ip)


def message_event(
    connection_id: str,
    body: Any,
    route_key: str | None = None,
    *,
    source_ip: str | None = None,
) -> dict[str, Any]:
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
        routes = ROUTED_ACTIONS  # the stack's routes (tests/infra checks they are the same)
        route_key = action if isinstance(action, str) and action in routes else "$default"
    event = _event("message", connection_id, source_ip, routeKey=route_key)
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
