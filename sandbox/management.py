"""The @connections management API: POST, GET and DELETE, with its status codes and headers."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote

from aiohttp import WSCloseCode, web

from sandbox.events import is_valid_connection_id, iso8601
from sandbox.faults import Faults, SdkAttempt, trace_root
from sandbox.lambdas import LambdaService
from sandbox.responses import gone, json_response, request_id_header
from sandbox.stage import WebSocketStage

log = logging.getLogger("sandbox")

POST_LIMIT = 131072


class ConnectionsApi:
    """`/{stage}/@connections/{id}`: post to, describe or close a connection of the stage.

    With fault switches on (sandbox.faults), POSTs may be delayed or refused, and the
    execution environment of an invocation may be killed at its Nth post: the caller is
    recognised by the X-Amzn-Trace-Id header its SDK sends (the invocation's
    `_X_AMZN_TRACE_ID`).
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
            if conn.faulty:
                fault = self._faults.post_fault(
                    connection_id, SdkAttempt.from_headers(request.headers.get)
                )
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
