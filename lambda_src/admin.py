"""Lambda entry point of the server API: operators' HTTPS requests, signed with SigV4.

API Gateway (an HTTP API whose every route has IAM authorization, infra/server_api.py)
admits a request only when it is signed by a principal allowed `execute-api:Invoke` on
that route, and passes it here in the payload format 2.0. One table (`ROUTES`) maps each
route key to what it does; one place (`handler`) turns errors into the JSON answer and
its status. docs/operations.md, "The server API", has every route with an example.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chat import deadline, moderating, telemetry
from chat.errors import ChatError, ErrorCode
from chat.moderation import SYSTEM, Op, read_request
from chat.wiring import chat_service, operator, settings

__all__ = ["ROUTES", "handler"]

log = logging.getLogger("chat.admin")

Body = dict[str, Any]
# A request body larger than this is refused before it is parsed (a post is at most a
# chat message; a moderation action a few fields).
BODY_MAX_BYTES = 16 * 1024


@dataclass(frozen=True)
class AdminRequest:
    """A request as the routes see it: who signed it, its path parameters, its query
    parameters and its JSON body (None when it has none)."""

    caller: str
    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: Body | None = None


@dataclass(frozen=True)
class Answer:
    """A route's answer: the status and the JSON document."""

    status: int
    document: Body


Route = Callable[[AdminRequest], Answer]


def _list_rooms(request: AdminRequest) -> Answer:
    return Answer(200, operator().rooms())


def _list_members(request: AdminRequest) -> Answer:
    found = operator().members(request.path.get("room"))
    return Answer(
        200,
        {
            "room": found.name,
            "kind": found.kind,
            "count": len(found.members),
            "members": [{"name": m.name, "protocol": m.protocol} for m in found.members],
        },
    )


def _post(request: AdminRequest) -> Answer:
    """A message from the system into a room: the `announce` moderation op, as `system`."""
    body = {**(request.body or {}), "op": Op.ANNOUNCE.value}
    return _run(request, body, request.path.get("room"))


def _moderate(request: AdminRequest) -> Answer:
    """Any moderation op, its body the `moderate` frame's fields (docs/protocol.md)."""
    body = request.body or {}
    return _run(request, body, body.get("room"))


def _run(request: AdminRequest, body: Mapping[str, Any], room: object) -> Answer:
    """Run a moderation request as the system. The room is told `by: system`; the audit
    entry and the log line name the signer (`system:<its ARN>`), which members never see."""
    moderation = settings().moderation
    asked = read_request(
        body,
        max_seconds=moderation.moderation_max_seconds,
        slow_mode_max_seconds=moderation.slow_mode_max_seconds,
    )
    actor = replace(SYSTEM, identity=f"{SYSTEM.identity}:{request.caller}")
    chat = chat_service()
    try:
        moderating.run(chat, actor, asked, room)
    finally:
        chat.flush_events()  # the action's events out (docs/events.md); never raises
    done: Body = {"op": asked.op.value, "done": True}
    if isinstance(room, str):
        done["room"] = room
    return Answer(200, done)


# Route key (as the stack declares it: infra/server_api.py's SERVER_API_ROUTES) -> route.
ROUTES: dict[str, Route] = {
    "GET /rooms": _list_rooms,
    "GET /rooms/{room}/members": _list_members,
    "POST /rooms/{room}/messages": _post,
    "POST /moderation": _moderate,
}

# The HTTP status of each refusal; any other code is 400 (the request was wrong).
STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.ROOM_NOT_FOUND: 404,
    ErrorCode.UNKNOWN_RECIPIENT: 404,
    ErrorCode.UNKNOWN_MESSAGE: 404,
    ErrorCode.NOT_IN_ROOM: 404,
    ErrorCode.ROOM_EXISTS: 409,
    ErrorCode.NAME_TAKEN: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_MODERATOR: 403,
    ErrorCode.INTERNAL: 500,
}


def read_body(event: Mapping[str, Any]) -> Body | None:
    """The request's JSON object, None without a body. Raises ChatError(INVALID_JSON)."""
    raw = event.get("body")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _invalid_json()
    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw
    except (binascii.Error, ValueError):
        raise _invalid_json() from None
    if len(data) > BODY_MAX_BYTES:
        raise ChatError(ErrorCode.INVALID_JSON, f"The body is over {BODY_MAX_BYTES} bytes.")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise _invalid_json() from None
    if not isinstance(body, dict):
        raise _invalid_json()
    return body


def _invalid_json() -> ChatError:
    return ChatError(ErrorCode.INVALID_JSON, "Send one JSON object as the body.")


def caller_of(event: Mapping[str, Any]) -> str:
    """The signer's ARN, as API Gateway's IAM authorization passes it."""
    context = event.get("requestContext") or {}
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("callerId") or "unknown")[:512]


def error_document(error: ChatError) -> Body:
    """The JSON answer to a refused request: its code and a message safe to show."""
    document: Body = {"error": {"code": error.code.value, "message": error.message}}
    if error.retry_after_ms is not None:
        document["error"]["retryAfterMs"] = error.retry_after_ms
    return document


def _response(status: int, document: Body) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(document, ensure_ascii=False, separators=(",", ":")),
    }


@telemetry.entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle one server API request; every answer is JSON, every failure logged."""
    with deadline.running(deadline.Deadline.from_context(context)):
        return _handle(event, context)


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    request_context = event.get("requestContext") or {}
    route_key = str(event.get("routeKey") or request_context.get("routeKey") or "")
    caller = caller_of(event)
    try:
        route = ROUTES.get(route_key)
        if route is None:
            answer = Answer(404, {"error": {"code": "NOT_FOUND", "message": "No such route."}})
        else:
            request = AdminRequest(
                caller=caller,
                path=_strings(event.get("pathParameters")),
                query=_strings(event.get("queryStringParameters")),
                body=read_body(event),
            )
            answer = route(request)
    except ChatError as error:
        answer = Answer(STATUS_OF.get(error.code, 400), error_document(error))
    except Exception:
        log.exception("server api request failed", extra={"route": route_key, "caller": caller})
        answer = Answer(
            500,
            error_document(ChatError(ErrorCode.INTERNAL, "Something went wrong on our side.")),
        )
    telemetry.record_server_api(answer.status)
    log.info(
        "server api request",
        extra={
            "route": route_key,
            "caller": caller,
            "status": answer.status,
            "requestId": request_context.get("requestId"),
            "awsRequestId": getattr(context, "aws_request_id", None),
            "durationMs": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return _response(answer.status, answer.document)


def _strings(raw: object) -> dict[str, str]:
    """A payload map (path or query parameters) with string keys and values only."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)}
