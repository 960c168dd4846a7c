"""Lambda entry point: turns API Gateway WebSocket events into chat requests.

One dispatch table maps each action to the service; one place (`lambda_handler`)
turns errors into the error frame the sender receives.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from chat import frames, logs
from chat.errors import ChatError, ErrorCode
from chat.notifier import ConnectionsNotifier
from chat.service import ChatService
from chat.settings import Settings
from chat.store import DynamoChatStore

log = logging.getLogger("chat.handler")

Body = dict[str, Any]
Action = Callable[[ChatService, str, Body], None]

ACTIONS: dict[str, Action] = {
    "setName": lambda chat, cid, body: chat.set_name(cid, body.get("name")),
    "sendPublic": lambda chat, cid, body: chat.send_public(cid, body.get("message")),
    "sendPrivate": lambda chat, cid, body: chat.send_private(
        cid, body.get("to"), body.get("message")
    ),
    # Keep-alive: resets API Gateway's 10-minute idle timer; nothing is sent back.
    "ping": lambda chat, cid, body: None,
}
VALID_ACTIONS = ", ".join(ACTIONS)


@functools.cache
def chat_service() -> ChatService:
    """The service wired to DynamoDB and API Gateway, built once per execution environment."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    retries: Any = {"mode": "standard"}
    dynamodb = boto3.client("dynamodb", config=Config(retries=retries))
    connections = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=settings.callback_url,
        config=Config(
            retries=retries,
            max_pool_connections=settings.fanout_concurrency,
            connect_timeout=3,
            read_timeout=5,
        ),
    )
    return ChatService(
        DynamoChatStore(dynamodb, settings.table_name),
        ConnectionsNotifier(connections, concurrency=settings.fanout_concurrency),
        connection_ttl_seconds=settings.connection_ttl_seconds,
    )


def parse_body(raw: object) -> Body:
    """The client frame as a JSON object. Raises ChatError(INVALID_JSON)."""
    try:
        body = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ChatError(
            ErrorCode.INVALID_JSON,
            f'Send a JSON object such as {{"action": "setName", "name": "Alice"}}. '
            f"Valid actions: {VALID_ACTIONS}.",
        )
    return body


def handle_message(chat: ChatService, connection_id: str, route_key: str, body: Body) -> None:
    """Run the action the route (or, on $default, the body's `action`) names."""
    action_name = route_key if route_key != "$default" else body.get("action")
    action = ACTIONS.get(action_name) if isinstance(action_name, str) else None
    if action is None:
        described = "Missing action" if action_name is None else f"Unknown action {action_name!r}"
        raise ChatError(ErrorCode.UNKNOWN_ACTION, f"{described}. Valid actions: {VALID_ACTIONS}.")
    action(chat, connection_id, body)


def _client_action(route_key: str, body: Body | None) -> str | None:
    """The action to name in an error frame: the route, or the parsed body's action."""
    if route_key != "$default":
        return route_key
    action = body.get("action") if body is not None else None
    return action if isinstance(action, str) else None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle one $connect, $disconnect or message event. Never raises on a bad frame."""
    started = time.perf_counter()
    request = event.get("requestContext") or {}
    route_key = str(request.get("routeKey", ""))
    connection_id = str(request.get("connectionId", ""))
    outcome = "ok"
    status = 200
    body: Body | None = None  # parsed once; error frames name its action
    try:
        chat = chat_service()
        if route_key == "$connect":
            chat.connect(connection_id, request.get("connectedAt"))
        elif route_key == "$disconnect":
            chat.disconnect(connection_id)
        else:
            body = parse_body(event.get("body"))
            handle_message(chat, connection_id, route_key, body)
    except ChatError as error:
        outcome = error.code.value
        _reply_error(connection_id, error, _client_action(route_key, body))
    except Exception:
        outcome = ErrorCode.INTERNAL.value
        status = 500
        log.exception(
            "request failed",
            extra={"route": route_key, "connectionId": connection_id},
        )
        if route_key not in ("$connect", "$disconnect"):
            internal = ChatError(ErrorCode.INTERNAL, "Something went wrong on our side.")
            _reply_error(connection_id, internal, _client_action(route_key, body))
    log.info(
        "request",
        extra={
            "route": route_key,
            "connectionId": connection_id,
            "requestId": request.get("requestId"),
            "awsRequestId": getattr(context, "aws_request_id", None),
            "outcome": outcome,
            "durationMs": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    # $connect: a non-2xx status refuses the handshake. Other routes: ignored (one-way).
    return {"statusCode": status if route_key == "$connect" else 200}


def _reply_error(connection_id: str, error: ChatError, action: str | None) -> None:
    try:
        chat_service().notify(connection_id, frames.error(error.code, error.message, action))
    except Exception:
        log.exception("could not send the error frame", extra={"connectionId": connection_id})
