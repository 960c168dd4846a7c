"""The @connections management API: POST, GET and DELETE, with its status codes and headers."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import WSCloseCode, web

from sandbox.events import is_valid_connection_id, iso8601
from sandbox.responses import gone, json_response, request_id_header
from sandbox.stage import WebSocketStage

POST_LIMIT = 131072


class ConnectionsApi:
    """`/{stage}/@connections/{id}`: post to, describe or close a connection of the stage."""

    def __init__(self, stage: WebSocketStage) -> None:
        self._stage = stage

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
        conn = self._stage.open_connection(connection_id)
        if conn is None:
            return gone()
        if method == "POST":
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
