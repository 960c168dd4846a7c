"""API Gateway WebSocket event builders, ids, timestamps and the gateway's own error frames."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{15}=")
_HOP_BY_HOP = frozenset({"connection", "upgrade"})


def new_id() -> str:
    """A fresh connection/request/message id: 16 base64url characters ending in `=`.

    Real ids (`IU3kkeN4IAMCJwA=`) encode 11 bytes, which is what gives the single `=`.
    """
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def is_valid_connection_id(value: str) -> bool:
    """Whether `value` has the shape of a connection id (otherwise the API answers 400)."""
    return _CONNECTION_ID.fullmatch(value) is not None


def epoch_ms() -> int:
    """The current time in integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def request_time(ms: int) -> str:
    """CLF time as in `requestTime`: `19/Jul/2023:19:28:16 +0000`."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"


def iso8601(ms: int) -> str:
    """ISO-8601 UTC with milliseconds, as GetConnection returns it."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def trace_id(ms: int) -> str:
    """An X-Ray style `Root=1-<epoch hex>-<24 hex>` trace header value."""
    return f"Root=1-{ms // 1000:08x}-{os.urandom(12).hex()}"


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """The gateway's error frame, spaced exactly like AWS's (space after the first colon only)."""
    return (
        f'{{"message": "{message}", "connectionId":"{connection_id}", "requestId":"{request_id}"}}'
    )


@dataclass(frozen=True)
class ConnectionInfo:
    """What every event of one connection shares, `requestContext.authorizer` included."""

    connection_id: str
    connected_at: int
    api_id: str
    stage: str
    domain_name: str
    source_ip: str
    user_agent: str | None
    authorizer: Mapping[str, Any] | None = None

    def identity(self) -> dict[str, str]:
        """`requestContext.identity`: sourceIp, plus userAgent when the client sent one."""
        out = {"sourceIp": self.source_ip}
        if self.user_agent is not None:
            out["userAgent"] = self.user_agent
        return out


@dataclass(frozen=True)
class ForwardingInfo:
    """How the client reached the gateway, for the X-Forwarded-* headers."""

    proto: str
    port: int


def _request_context(
    info: ConnectionInfo, *, route_key: str, event_type: str, request_id: str, request_ms: int
) -> dict[str, Any]:
    context: dict[str, Any] = {"routeKey": route_key}
    if info.authorizer is not None:
        context["authorizer"] = dict(info.authorizer)
    return {
        **context,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(request_ms),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": info.connected_at,
        "requestTimeEpoch": request_ms,
        "identity": info.identity(),
        "requestId": request_id,
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": info.api_id,
    }


def _merge(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Single-value (last wins) and multi-value maps; names keep their first-seen case."""
    names: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        key = names.setdefault(name.lower(), name)
        multi.setdefault(key, []).append(value)
    single = {name: values[-1] for name, values in multi.items()}
    return single, multi


def gateway_headers(
    raw: Iterable[tuple[str, str]], *, source_ip: str, forwarding: ForwardingInfo, request_ms: int
) -> list[tuple[str, str]]:
    """The client's headers as API Gateway passes them on (to an authorizer, all of them).

    Names keep the client's case; X-Forwarded-For gets the client IP appended,
    X-Forwarded-Proto/Port are set, X-Amzn-Trace-Id is added if absent.
    """
    pairs = list(raw)
    lowered = {name.lower(): index for index, (name, _) in enumerate(pairs)}
    forwarded_for = "x-forwarded-for"
    if forwarded_for in lowered:
        index = lowered[forwarded_for]
        name, value = pairs[index]
        pairs[index] = (name, f"{value}, {source_ip}")
    else:
        pairs.append(("X-Forwarded-For", source_ip))
    for name, value in (
        ("X-Forwarded-Port", str(forwarding.port)),
        ("X-Forwarded-Proto", forwarding.proto),
    ):
        pairs = [(n, v) for n, v in pairs if n.lower() != name.lower()]
        pairs.append((name, value))
    if "x-amzn-trace-id" not in lowered:
        pairs.append(("X-Amzn-Trace-Id", trace_id(request_ms)))
    return pairs


def without_hop_by_hop(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """`headers` minus Connection and Upgrade, which the $connect route does not see."""
    return [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]


def _query_maps(query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """queryStringParameters (last value wins) and multiValueQueryStringParameters, or no keys
    at all when there is no query string."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in query:
        single[name] = value
        multi.setdefault(name, []).append(value)
    if not single:
        return {}
    return {"queryStringParameters": single, "multiValueQueryStringParameters": multi}


def authorizer_event(
    info: ConnectionInfo,
    *,
    method_arn: str,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    request_id: str,
    request_ms: int,
) -> dict[str, Any]:
    """The REQUEST authorizer's event: `type`, `methodArn`, the headers (Connection and
    Upgrade included), the query maps, empty `stageVariables`, and the CONNECT context."""
    single, multi = _merge(headers)
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": single,
        "multiValueHeaders": multi,
        **_query_maps(query),
        "stageVariables": {},
        "requestContext": _request_context(
            info,
            route_key="$connect",
            event_type="CONNECT",
            request_id=request_id,
            request_ms=request_ms,
        ),
    }


def connect_event(
    info: ConnectionInfo,
    *,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    request_id: str,
    request_ms: int,
) -> dict[str, Any]:
    """The CONNECT event; the query keys are present only when there is a query."""
    single, multi = _merge(headers)
    event: dict[str, Any] = {"headers": single, "multiValueHeaders": multi, **_query_maps(query)}
    event["requestContext"] = _request_context(
        info,
        route_key="$connect",
        event_type="CONNECT",
        request_id=request_id,
        request_ms=request_ms,
    )
    event["isBase64Encoded"] = False
    return event


def message_event(
    info: ConnectionInfo,
    *,
    route_key: str,
    body: str,
    request_id: str,
    message_id: str,
    request_ms: int,
) -> dict[str, Any]:
    """The MESSAGE event: no headers, `messageId` in the context, the raw frame as `body`."""
    context = _request_context(
        info,
        route_key=route_key,
        event_type="MESSAGE",
        request_id=request_id,
        request_ms=request_ms,
    )
    context["messageId"] = message_id
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    info: ConnectionInfo,
    *,
    status_code: int,
    reason: str,
    request_id: str,
    request_ms: int,
) -> dict[str, Any]:
    """The DISCONNECT event, with AWS's fixed headers and the close code and reason."""
    headers = {"Host": info.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    context = _request_context(
        info,
        route_key="$disconnect",
        event_type="DISCONNECT",
        request_id=request_id,
        request_ms=request_ms,
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }
