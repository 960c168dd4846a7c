"""The @connections management API: POST, GET and DELETE, with its status codes and headers."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from urllib.parse import unquote

from aiohttp import WSCloseCode, web

from sandbox.events import is_valid_connection_id, iso8601
from sandbox.faults import (
    CUT_BODY,
    LATE,
    RESET_AFTER_WRITE,
    SILENT,
    Faults,
    PostFault,
    SdkAttempt,
    trace_root,
)
from sandbox.lambdas import LambdaService
from sandbox.responses import gone, json_response, request_id_header
from sandbox.stage import WebSocketStage

log = logging.getLogger("sandbox")

POST_LIMIT = 131072


class ConnectionsApi:
    """`/{stage}/@connections/{id}`: post to, describe or close a connection of the stage.

    With fault switches on (sandbox.faults), POSTs may be delayed or refused, delivered with
    a broken answer, and the execution environment of an invocation may be killed at its Nth
    post: the caller is recognised by the X-Amzn-Trace-Id header its SDK sends (the
    invocation's `_X_AMZN_TRACE_ID`).
    """

    def __init__(
        self, stage: WebSocketStage, lambdas: LambdaService, faults: Faults | None = None
    ) -> None:
        self._stage = stage
        self._lambdas = lambdas
        self._faults = faults or Faults()

    async def handle(self, request: web.Request, raw_id: str) -> web.StreamResponse:
        """Answer one management request for the (still percent-encoded) connection id."""
        connection_id = unquote(raw_id)
        method = request.method
        if method not in ("POST", "GET", "DELETE"):
            return json_response(
                403, {"message": "Missing Authentication Token"}, error_type="ForbiddenException"
            )
        if not is_valid_connection_id(connection_id):
            return json_response(
                400,
                {"message": f"Invalid connectionId: {connection_id}"},
                error_type="BadRequestException",
            )
        data = b""
        if method == "POST":
            data = await request.read()
            if len(data) > POST_LIMIT:
                return json_response(
                    413,
                    {"message": "Request entity too large"},
                    error_type="PayloadTooLargeException",
                )
            if self._crash_caller(request, connection_id):
                return json_response(
                    500,
                    {"message": "Internal server error"},
                    error_type="InternalServerErrorException",
                )
        conn = self._stage.open_connection(connection_id)
        if conn is None:
            return gone()
        if method == "POST":
            fault = PostFault()
            attempt = SdkAttempt()
            if conn.faulty:
                attempt = SdkAttempt.from_headers(request.headers.get)
                fault = self._faults.post_fault(connection_id, attempt)
                if fault.delay_s > 0:
                    await asyncio.sleep(fault.delay_s)
                if fault.status is not None:
                    return json_response(fault.status, fault.body, error_type=fault.error_type)
                if self._stage.open_connection(connection_id) is None:
                    return gone()
            try:
                text: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data
            if not await self._stage.send(conn, text):
                return gone()
            if fault.breaks is not None:
                log.info(
                    "fault: POST %s %s %s: delivered",
                    connection_id,
                    attempt.describe(),
                    fault.breaks,
                )
                return await _break_answer(request, fault)
            return web.Response(status=200, headers=request_id_header())
        if method == "GET":
            return json_response(
                200,
                {
                    "connectedAt": iso8601(conn.info.connected_at),
                    "identity": conn.info.identity(),
                    "lastActiveAt": iso8601(conn.last_active_ms()),
                },
            )
        self._stage.close(conn, WSCloseCode.OK, "Connection Closed Normally", frame_reason="")
        return web.Response(status=204, headers=request_id_header())

    def _crash_caller(self, request: web.Request, connection_id: str) -> bool:
        """The crash switch: kill the caller's execution environment at its Nth post.

        True when the post must not be delivered (the caller is being, or was, killed).
        """
        faults = self._faults
        if faults.config.crash_after_posts <= 0:
            return False
        root = trace_root(request.headers.get("X-Amzn-Trace-Id"))
        caller = self._lambdas.running(root)
        if not faults.crashes(root, caller.label if caller is not None else None):
            return False
        if caller is not None and caller.worker.alive:
            log.info(
                "fault: killing %s (pid %s, route %s) at its post to %s",
                caller.function_name,
                caller.worker.pid,
                caller.label,
                connection_id,
            )
            caller.worker.crash()
        return True


# -- broken answers (--fault-post-break), after the post was delivered ----------------------

# The 200 whose body `cut-body` cuts: a Content-Length for all of it, half of it sent.
_CUT_BODY = json.dumps({"message": "delivered, but this answer is cut short"}).encode()


async def _break_answer(request: web.Request, fault: PostFault) -> web.StreamResponse:
    """Answer a delivered post as `fault.breaks` says."""
    if fault.breaks == LATE:
        await asyncio.sleep(fault.late_s)
        return web.Response(status=200, headers=request_id_header())
    response = web.StreamResponse(status=200, headers=request_id_header())
    if fault.breaks == SILENT:
        await _until_client_gone(request)
    elif fault.breaks == CUT_BODY:
        response.content_type = "application/json"
        response.content_length = len(_CUT_BODY)
        await response.prepare(request)
        await response.write(_CUT_BODY[: len(_CUT_BODY) // 2])
        await _flushed(request)
        _drop(request, reset=False)
    elif fault.breaks == RESET_AFTER_WRITE:
        _drop(request, reset=True)
    # The connection is gone: aiohttp writes nothing more on it.
    return response


async def _until_client_gone(request: web.Request) -> None:
    """Hold the request, unanswered, until the client closes the connection."""
    while (transport := request.transport) is not None and not transport.is_closing():
        await asyncio.sleep(0.05)


async def _flushed(request: web.Request, limit_s: float = 2.0) -> None:
    """Wait until what was written has left the TLS layer and the socket's buffer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while (transport := request.transport) is not None and loop.time() < deadline:
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)


def _drop(request: web.Request, *, reset: bool) -> None:
    """Abort the connection: with `reset`, a TCP RST (SO_LINGER 0) instead of a FIN."""
    transport = request.transport
    if transport is None:
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
