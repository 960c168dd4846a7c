"""Lambda entry point: turns API Gateway WebSocket events into chat requests.

One dispatch table maps each action to the service; one place (`lambda_handler`)
turns errors into the error frame the sender receives.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chat import deadline, frames, rooms, sharding, telemetry
from chat.errors import ChatError, ErrorCode
from chat.names import validate_name
from chat.origins import header, origin_allowed
from chat.ports import DELETE, EDIT, Connection
from chat.service import (
    ChatService,
    DroppedError,
    validate_client_key,
    validate_protocol,
    validate_since,
)
from chat.wiring import chat_service, reset, settings, worker_notifier

__all__ = ["fanout_handler", "lambda_handler", "reset"]

log = logging.getLogger("chat.handler")

Body = dict[str, Any]
# (service, sender as the store knows it, the frame, the client's id for the frame)
Action = Callable[[ChatService, Connection | None, Body, str | None], None]
ID_MAX_LENGTH = 64

ACTIONS: dict[str, Action] = {
    "setName": lambda chat, sender, body, cid: chat.set_name(
        sender,
        body.get("name"),
        cid,
        since(body),
        validate_client_key(body.get("clientKey")),
        protocol=validate_protocol(body.get("protocol")),
    ),
    "sendPublic": lambda chat, sender, body, cid: chat.send_public(
        sender, body.get("message"), cid, body.get("room")
    ),
    "sendPrivate": lambda chat, sender, body, cid: chat.send_private(
        sender, body.get("to"), body.get("message"), cid
    ),
    # Keep-alive: resets API Gateway's 10-minute idle timer; only an `id` gets an answer.
    "ping": lambda chat, sender, body, cid: chat.acknowledge(
        sender.connection_id if sender else "", "ping", cid
    ),
    "history": lambda chat, sender, body, cid: chat.history(
        sender, body.get("since"), cid, body.get("room")
    ),
    # Protocol v2 (docs/rooms-design.md §3): a v1 connection gets UNKNOWN_ACTION for these.
    "joinRoom": lambda chat, sender, body, cid: chat.join_room(
        sender, body.get("room"), cid, body.get("since")
    ),
    "leaveRoom": lambda chat, sender, body, cid: chat.leave_room(sender, body.get("room"), cid),
    "createRoom": lambda chat, sender, body, cid: chat.create_room(
        sender, body.get("room"), body.get("kind"), body.get("group"), cid
    ),
    "invite": lambda chat, sender, body, cid: chat.invite(
        sender, body.get("room"), body.get("to"), cid
    ),
    "typing": lambda chat, sender, body, cid: chat.typing(sender, body.get("room")),
    "editMessage": lambda chat, sender, body, cid: chat.change_message(
        sender,
        action=EDIT,
        raw_room=body.get("room"),
        raw_message_id=body.get("messageId"),
        raw_seq=body.get("seq"),
        raw_text=body.get("message"),
        client_id=cid,
    ),
    "deleteMessage": lambda chat, sender, body, cid: chat.change_message(
        sender,
        action=DELETE,
        raw_room=body.get("room"),
        raw_message_id=body.get("messageId"),
        raw_seq=body.get("seq"),
        client_id=cid,
    ),
    "listRooms": lambda chat, sender, body, cid: chat.list_rooms(sender, cid),
    "markRead": lambda chat, sender, body, cid: chat.mark_read(
        sender, body.get("room"), body.get("seq"), cid
    ),
    # Moderation (issue 17, docs/protocol.md "Moderation"): one action, its `op` says which.
    "moderate": lambda chat, sender, body, cid: chat.moderate(sender, body, cid),
}
# The actions each protocol version may send (a v1 connection: today's five).
V1_ACTIONS = ("setName", "sendPublic", "sendPrivate", "ping", "history")
PROTOCOL_ACTIONS = {1: frozenset(V1_ACTIONS), 2: frozenset(ACTIONS)}
VALID_ACTIONS = ", ".join(V1_ACTIONS)
VALID_V2_ACTIONS = ", ".join(ACTIONS)
# Actions with a route of their own in the stack (infra/websocket_api.py): they run only on
# it, under its throttle. $default serves the others (ping, history, listRooms, markRead),
# and unknown actions. A v1 connection's routed actions are today's three.
V1_ROUTED_ACTIONS = frozenset({"setName", "sendPublic", "sendPrivate"})
ROUTED_ACTIONS = V1_ROUTED_ACTIONS | {
    "joinRoom",
    "leaveRoom",
    "createRoom",
    "invite",
    "typing",
    "editMessage",
    "deleteMessage",
    "moderate",
}
CHAT_SUBPROTOCOL = "chat"


class UnknownActionError(ChatError):
    """UNKNOWN_ACTION: its error frame names no action (never echo what the client made up,
    nor a v2 action to a v1 client)."""


class NotStrictJsonError(ValueError):
    """A frame that Python's parser would read but that is not strict JSON (RFC 8259)."""


def _no_repeats(pairs: list[tuple[str, Any]]) -> Body:
    """An object's members, refusing a key given twice: which one counts is up to the
    parser (Python keeps the last, others the first), so such a frame means two things."""
    body = dict(pairs)
    if len(body) != len(pairs):
        raise NotStrictJsonError("duplicate key")
    return body


def _no_constant(name: str) -> Any:
    raise NotStrictJsonError(f"{name} is not JSON")


def parse_body(raw: object) -> Body:
    """The client frame as a JSON object. Raises ChatError(INVALID_JSON) on any parse failure,
    a key given twice in any object, and NaN or Infinity."""
    try:
        body = (
            json.loads(raw, object_pairs_hook=_no_repeats, parse_constant=_no_constant)
            if isinstance(raw, str)
            else None
        )
    except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
        body = None
    if not isinstance(body, dict):
        raise ChatError(
            ErrorCode.INVALID_JSON,
            "Send one strict JSON object (each key once, no NaN or Infinity) such as "
            f'{{"action": "setName", "name": "Alice"}}. Valid actions: {VALID_ACTIONS}.',
        )
    return body


@dataclass(frozen=True)
class ClientFrame:
    """A frame as read: its body, why it cannot be used (if so), and its valid `id`."""

    body: Body | None
    problem: ChatError | None
    client_id: str | None

    @classmethod
    def read(cls, raw: object) -> ClientFrame:
        try:
            body = parse_body(raw)
        except ChatError as error:
            return cls(None, error, None)
        raw_id = body.get("id")
        if raw_id is None:
            return cls(body, None, None)
        if (
            isinstance(raw_id, str)
            and 1 <= len(raw_id) <= ID_MAX_LENGTH
            and all("!" <= ch <= "~" for ch in raw_id)
        ):
            return cls(body, None, raw_id)
        problem = ChatError(
            ErrorCode.INVALID_ID,
            f"An id must be 1-{ID_MAX_LENGTH} printable ASCII characters without spaces.",
        )
        return cls(body, problem, None)


def since(body: Body) -> int | None:
    """The frame's `since` (the last seq the client saw). Raises ChatError(INVALID_ID)."""
    return validate_since(body.get("since"))


def handle_message(
    chat: ChatService, connection_id: str, route_key: str, frame: ClientFrame
) -> None:
    """Admit the frame (rate limits), then run the action its route serves.

    Every frame takes a token first, even one that is not JSON, so that no frame does
    work for free. A routed action runs only on its own route (API Gateway chose the
    route from the same `action`; a frame it read otherwise is refused), and `$default`
    runs only the actions without a route of their own: no frame escapes its route's
    throttle.
    """
    body = frame.body
    action_name = route_key if route_key != "$default" else (body or {}).get("action")
    sender = chat.admit(connection_id, action_name)
    if frame.problem is not None or body is None:
        raise frame.problem or ChatError(ErrorCode.INVALID_JSON, "Send a JSON object.")
    if route_key != "$default" and body.get("action") != route_key:
        raise ChatError(
            ErrorCode.INVALID_JSON,
            "The frame's action does not match the route it arrived on; send strict JSON.",
        )
    v2 = sender is not None and sender.protocol == 2
    routed = ROUTED_ACTIONS if v2 else V1_ROUTED_ACTIONS
    if route_key == "$default" and isinstance(action_name, str) and action_name in routed:
        raise ChatError(
            ErrorCode.INVALID_JSON,
            "The frame's action has its own route but did not arrive on it; send strict JSON.",
        )
    allowed = PROTOCOL_ACTIONS[2 if v2 else 1]
    action = (
        ACTIONS.get(action_name)
        if isinstance(action_name, str) and action_name in allowed
        else None
    )
    if action is None:
        described = "Missing action" if action_name is None else "Unknown action (action)"
        valid = VALID_V2_ACTIONS if v2 else VALID_ACTIONS
        raise UnknownActionError(ErrorCode.UNKNOWN_ACTION, f"{described}. Valid actions: {valid}.")
    if sender is None and action_name == "ping":
        return  # a ping from a connection already gone: nothing to answer
    action(chat, sender, body, frame.client_id)


def connect(chat: ChatService, event: dict[str, Any]) -> int:
    """$connect: check the page's Origin and the sign-in, then record the connection.

    Returns the handshake status: 200; 403 for a page or a sign-in we refuse; 429 when
    the client's address (or account) opens connections too fast or holds too many.
    """
    request = event.get("requestContext") or {}
    connection_id = str(request.get("connectionId", ""))
    config = settings()
    origin = header(event.get("headers"), "Origin")
    if not origin_allowed(
        origin, config.allowed_origins, allow_missing=config.allow_missing_origin
    ):
        log.warning(
            "connection refused: origin not allowed",
            extra={"connectionId": connection_id, "origin": (origin or "")[:200]},
        )
        return 403
    bound_name = subject = None
    if config.sign_in_required:
        authorizer = request.get("authorizer") or {}
        claimed = authorizer.get("name")
        subject = str(authorizer.get("sub") or "")[:256] or None
        try:
            bound_name = validate_name(claimed)
        except ChatError as error:
            log.warning(
                "connection refused: the sign-in gives no usable chat name",
                extra={"connectionId": connection_id, "reason": error.message},
            )
            return 403
    source_ip = (request.get("identity") or {}).get("sourceIp")
    groups = _groups((request.get("authorizer") or {}).get("groups")) if subject else ()
    try:
        chat.connect(
            connection_id,
            request.get("connectedAt"),
            bound_name,
            source_ip=str(source_ip)[:64] if source_ip else None,
            subject=subject,
            groups=groups,
        )
    except ChatError as error:
        if error.code != ErrorCode.RATE_LIMITED:
            raise
        log.warning(
            "connection refused: too many from one address or account",
            extra={"connectionId": connection_id, "reason": error.message},
        )
        return 429
    try:
        chat.close_unnamed()
    except Exception:  # the sweep is housekeeping: never refuse a handshake for it
        log.exception("could not close unnamed connections", extra={"connectionId": connection_id})
    return 200


# At most this many of the token's groups are kept on the connection (a private room's
# `group` is matched against them); each as chat.rooms.validate_group allows.
MAX_GROUPS = 50


def _groups(raw: object) -> tuple[str, ...]:
    """The authorizer's `groups` context value (comma-joined, as API Gateway passes context
    values as strings): the valid group names, in order, each once."""
    if not isinstance(raw, str):
        return ()
    kept: dict[str, None] = {}
    for part in raw.split(","):
        group = part.strip()
        if group and len(group) <= rooms.GROUP_MAX_LENGTH and rooms.GROUP.fullmatch(group):
            kept[group] = None
    return tuple(kept)[:MAX_GROUPS]


def subprotocol(event: dict[str, Any]) -> dict[str, str]:
    """The `Sec-WebSocket-Protocol` answer: `chat` when the client offers it, else none.

    A browser that offers subprotocols (as the sign-in does, with the token beside
    `chat`) drops a handshake that does not pick one; API Gateway picks none by itself.
    The token is never echoed.
    """
    offered = header(event.get("headers"), "Sec-WebSocket-Protocol") or ""
    if CHAT_SUBPROTOCOL in (p.strip() for p in offered.split(",")):
        return {"Sec-WebSocket-Protocol": CHAT_SUBPROTOCOL}
    return {}


def _client_action(route_key: str, frame: ClientFrame) -> tuple[str | None, str | None]:
    """What an error frame names: the action (the route, or the body's) and the frame's id."""
    if route_key != "$default":
        return route_key, frame.client_id
    action = frame.body.get("action") if frame.body is not None else None
    if not isinstance(action, str) or action not in ACTIONS:
        return None, frame.client_id  # never echo what the client made up
    return action, frame.client_id


@telemetry.entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle one $connect, $disconnect or message event. Never raises on a bad frame.

    Posts wait at most until the invocation's deadline (chat/deadline.py): the Lambda
    context's remaining time, less a margin for the acknowledgement and the log line.
    """
    with deadline.running(deadline.Deadline.from_context(context)):
        return _handle_event(event, context)


def _handle_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    request = event.get("requestContext") or {}
    route_key = str(request.get("routeKey", ""))
    connection_id = str(request.get("connectionId", ""))
    outcome = "ok"
    status = 200
    frame = ClientFrame(None, None, None)  # read once; error frames name its action and id
    try:
        chat = chat_service()
        if route_key == "$connect":
            status = connect(chat, event)
            outcome = "ok" if status == 200 else "refused"
        elif route_key == "$disconnect":
            chat.disconnect(connection_id)
        else:
            frame = ClientFrame.read(event.get("body"))
            handle_message(chat, connection_id, route_key, frame)
    except DroppedError:  # a typing frame over its bucket: refused without an answer
        outcome = ErrorCode.RATE_LIMITED.value
    except ChatError as error:
        outcome = error.code.value
        about = _client_action(route_key, frame)
        if isinstance(error, UnknownActionError):
            about = (None, about[1])
        _reply_error(connection_id, error, about)
    except Exception:
        outcome = ErrorCode.INTERNAL.value
        status = 500
        log.exception(
            "request failed",
            extra={"route": route_key, "connectionId": connection_id},
        )
        if route_key not in ("$connect", "$disconnect"):
            internal = ChatError(ErrorCode.INTERNAL, "Something went wrong on our side.")
            _reply_error(connection_id, internal, _client_action(route_key, frame))
    telemetry.record_request(route_key, outcome)
    _publish_events()
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
    if route_key != "$connect":
        return {"statusCode": 200}
    if status == 200 and (headers := subprotocol(event)):
        return {"statusCode": 200, "headers": headers}
    return {"statusCode": status}


def _publish_events() -> None:
    """Send the invocation's events out (docs/events.md), after every reply; never fails
    the request."""
    try:
        chat_service().flush_events()
    except Exception:
        log.exception("could not publish the events")


def _reply_error(
    connection_id: str, error: ChatError, about: tuple[str | None, str | None]
) -> None:
    action, client_id = about
    frame = frames.error(
        error.code,
        error.message,
        action,
        error.retry_after_ms,
        client_id,
        details=error.details,
    )
    try:
        chat_service().notify(connection_id, frame)
    except Exception:
        log.exception("could not send the error frame", extra={"connectionId": connection_id})


@telemetry.entry
def fanout_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The fan-out worker: post one shard of a big delivery and report what happened.

    Invoked by the chat function only (its role alone may invoke this function), with the
    request chat/sharding.py writes. A request that is not one raises: the caller counts
    the shard as failed.
    """
    started = time.perf_counter()
    deliveries = sharding.decode_request(event)
    with deadline.running(deadline.Deadline.from_context(context)):
        report = worker_notifier().send(deliveries)
    log.info(
        "shard delivered",
        extra={
            "recipients": len(deliveries),
            "sent": report.sent,
            "gone": len(report.gone),
            "failed": report.failed,
            "awsRequestId": getattr(context, "aws_request_id", None),
            "durationMs": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return sharding.encode_report(report)
