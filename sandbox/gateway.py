"""The API Gateway emulation on aiohttp: WebSocket stage endpoint, @connections API, web client."""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import struct
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.reader_py import WebSocketDataQueue as _PyDataQueue
from aiohttp._websocket.reader_py import WebSocketReader as _PyReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE
from aiohttp.http_websocket import WebSocketError, WebSocketWriter
from aiohttp.web_request import BaseRequest

from sandbox.events import (
    ConnectionInfo,
    ForwardingInfo,
    connect_event,
    connect_headers,
    disconnect_event,
    epoch_ms,
    error_frame,
    is_valid_connection_id,
    iso8601,
    message_event,
    new_id,
)
from sandbox.lambdas import LambdaService
from sandbox.routing import RouteSelector
from sandbox.template import ApiSpec, RouteSpec

log = logging.getLogger("sandbox")

FRAME_LIMIT = 32 * 1024
MESSAGE_LIMIT = 128 * 1024
POST_LIMIT = 131072
INTEGRATION_TIMEOUT_S = 29.0
CLOSE_TIMEOUT_S = 2.0
NO_STATUS = 1005
NO_STATUS_REASON = "Client-side close frame status not set"
ABNORMAL = 1006

_DATA_OPCODES = frozenset({WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION})
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
}

Outcome = Literal["ok", "error", "integration_timeout"]


class _FrameLimitReader(_PyReader):
    """aiohttp's frame reader plus API Gateway's 32 KB per-frame limit (close 1009)."""

    def _handle_frame(
        self, fin: bool, opcode: int, payload: bytes | bytearray, compressed: int
    ) -> None:
        if opcode in _DATA_OPCODES and len(payload) > FRAME_LIMIT:
            raise WebSocketError(
                WSCloseCode.MESSAGE_TOO_BIG,
                f"Frame size {len(payload)} exceeds limit {FRAME_LIMIT}",
            )
        super()._handle_frame(fin, opcode, payload, compressed)


class _GatewayWebSocket(web.WebSocketResponse):
    """A WebSocketResponse whose reader enforces the frame limit as well as the message limit."""

    def _post_start(
        self, request: BaseRequest, protocol: str | None, writer: WebSocketWriter
    ) -> None:
        # Mirrors aiohttp 3.14's WebSocketResponse._post_start with our reader swapped in.
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        loop = self._loop
        assert loop is not None
        self._reader = _PyDataQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        self._parser = _FrameLimitReader(
            self._reader,
            self._max_msg_size,
            compress=bool(self._compress),
            decode_text=self._decode_text,
        )
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=callback)
        request.protocol.keep_alive(False)


class ConnState(enum.Enum):
    """Where a connection is in its life; only OPEN connections accept posts."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass
class _Connection:
    info: ConnectionInfo
    state: ConnState = ConnState.CONNECTING
    ws: web.WebSocketResponse | None = None
    transport: asyncio.Transport | None = None
    last_active_ms: int = 0
    last_activity: float = 0.0
    opened: float = 0.0
    close_code: int | None = None
    close_reason: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.info.connection_id

    def touch(self) -> None:
        self.last_activity = time.monotonic()
        self.last_active_ms = epoch_ms()

    def record_close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason


@dataclass(frozen=True)
class GatewayConfig:
    """The API to serve and the gateway's limits."""

    api: ApiSpec
    web_dir: Path | None
    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S


class Gateway:
    """One WebSocket API: its stages, its connections and its management API."""

    def __init__(self, config: GatewayConfig, lambdas: LambdaService) -> None:
        self._config = config
        self._api = config.api
        self._lambdas = lambdas
        self._routes: dict[str, RouteSpec] = dict(config.api.routes)
        self._selector = RouteSelector(config.api.route_selection_expression)
        self._connections: dict[str, _Connection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._disconnects: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._web_root = config.web_dir.resolve() if config.web_dir is not None else None

    def app(self) -> web.Application:
        """The aiohttp application serving every path of the sandbox."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # -- dispatch ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segments = request.rel_url.raw_path.split("/")[1:]
        if len(segments) > 1 and segments[-1] == "":
            segments = segments[:-1]
        first = segments[0] if segments else ""
        if first in self._api.stages:
            rest = segments[1:]
            if not rest:
                return await self._websocket(request, first)
            if len(rest) == 2 and _is_connections(rest[0]):
                return await self._management(request, rest[1])
            return _json_response(403, {"message": "Forbidden"}, error_type="ForbiddenException")
        if len(segments) == 2 and _is_connections(first):
            return await self._management(request, segments[1])
        if segments == ["get-ws-endpoint"] and request.method in ("GET", "HEAD"):
            endpoint = f"ws://{request.host}/{self._api.stages[0]}"
            return web.json_response({"endpoint": endpoint})
        return await self._static(request, segments)

    # -- $connect and the socket ------------------------------------------------------------

    async def _websocket(self, request: web.Request, stage: str) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").strip().lower() != "websocket":
            return web.Response(
                status=426, text="Upgrade Required", headers={"Upgrade": "websocket"}
            )
        ws = _GatewayWebSocket(
            protocols=(),
            compress=False,
            autoclose=False,
            autoping=True,
            max_msg_size=MESSAGE_LIMIT + 1,
            timeout=CLOSE_TIMEOUT_S,
        )
        if self._stopping:
            return web.Response(status=503, text="The sandbox is stopping")
        if request.method != "GET" or not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Bad WebSocket handshake")
        received_ms = epoch_ms()
        local_port = _local_port(request)
        info = ConnectionInfo(
            connection_id=new_id(),
            connected_at=received_ms,
            api_id=self._api.api_id,
            stage=stage,
            domain_name=request.host,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent"),
        )
        conn = _Connection(info=info)
        self._connections[conn.id] = conn
        accepted = False
        try:
            route = self._routes.get("$connect")
            if route is not None:
                raw_headers = [
                    (name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
                    for name, value in request.raw_headers
                ]
                headers = connect_headers(
                    raw_headers,
                    source_ip=info.source_ip,
                    forwarding=ForwardingInfo(proto=request.scheme, port=local_port),
                    request_ms=received_ms,
                )
                query = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
                event = connect_event(
                    info, headers=headers, query=query, request_id=new_id(), request_ms=epoch_ms()
                )
                outcome, payload = await self._integrate(route, event, conn.id)
                status, protocol = _connect_response(outcome, payload)
                if not 200 <= status < 300:
                    return _connect_rejection(status)
                if protocol is not None:
                    ws.headers["Sec-WebSocket-Protocol"] = protocol
            await ws.prepare(request)
            accepted = True
        finally:
            if not accepted:
                self._connections.pop(conn.id, None)
        conn.ws = ws
        conn.transport = request.transport
        conn.opened = time.monotonic()
        conn.touch()
        conn.state = ConnState.OPEN
        try:
            await self._serve(conn, ws)
        finally:
            self._finish(conn)
        return ws

    async def _serve(self, conn: _Connection, ws: web.WebSocketResponse) -> None:
        watchdog = asyncio.create_task(self._watch_timeouts(conn))
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT:
                    conn.touch()
                    self._spawn(self._on_message(conn, msg.data, epoch_ms()))
                elif msg.type is WSMsgType.BINARY:
                    conn.record_close(WSCloseCode.UNSUPPORTED_DATA, "")
                    conn.state = ConnState.CLOSING
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA)
                    return
                elif msg.type is WSMsgType.CLOSE:
                    code = int(msg.data or 0)
                    if code:
                        conn.record_close(code, str(msg.extra or ""))
                    else:
                        conn.record_close(NO_STATUS, NO_STATUS_REASON)
                    conn.state = ConnState.CLOSING
                    await ws.close(code=code or WSCloseCode.OK)
                    return
                elif msg.type is WSMsgType.ERROR:
                    # aiohttp already sent the close frame with the error's code (1009, 1002...)
                    error = msg.data
                    conn.record_close(
                        error.code if isinstance(error, WebSocketError) else ABNORMAL, ""
                    )
                    return
                elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
                    conn.record_close(ABNORMAL, "")
                    return
        finally:
            watchdog.cancel()

    def _finish(self, conn: _Connection) -> None:
        """The socket is gone: stop accepting posts, then run $disconnect (once)."""
        conn.record_close(ABNORMAL, "")
        conn.state = ConnState.CLOSED
        self._connections.pop(conn.id, None)
        route = self._routes.get("$disconnect")
        if route is not None:
            task = asyncio.create_task(self._run_disconnect(conn, route))
            self._disconnects.add(task)
            task.add_done_callback(self._disconnects.discard)
        conn.done.set()

    async def _run_disconnect(self, conn: _Connection, route: RouteSpec) -> None:
        event = disconnect_event(
            conn.info,
            status_code=conn.close_code if conn.close_code is not None else ABNORMAL,
            reason=conn.close_reason,
            request_id=new_id(),
            request_ms=epoch_ms(),
        )
        await self._integrate(route, event, conn.id)

    async def _watch_timeouts(self, conn: _Connection) -> None:
        idle = self._config.idle_timeout_s
        hard_deadline = conn.opened + self._config.max_duration_s
        while True:
            deadline = min(conn.last_activity + idle, hard_deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        self._begin_close(conn, WSCloseCode.GOING_AWAY, "Going away", frame_reason="Going away")

    def _begin_close(self, conn: _Connection, code: int, reason: str, *, frame_reason: str) -> None:
        """Close an open socket from the server side; $disconnect gets `code`/`reason`."""
        if conn.state is not ConnState.OPEN or conn.ws is None:
            return
        conn.record_close(code, reason)
        conn.state = ConnState.CLOSING
        self._spawn(conn.ws.close(code=code, message=frame_reason.encode("utf-8")))

    # -- messages ---------------------------------------------------------------------------

    async def _on_message(self, conn: _Connection, body: str, received_ms: int) -> None:
        request_id = new_id()
        route_key = self._selector.select(body, self._routes)
        if route_key is None:
            log.info("%s %s %s", "(no route)", conn.id, "Forbidden")
            await self._send(conn, error_frame("Forbidden", conn.id, request_id))
            return
        route = self._routes[route_key]
        event = message_event(
            conn.info,
            route_key=route_key,
            body=body,
            request_id=request_id,
            message_id=new_id(),
            request_ms=received_ms,
        )
        outcome, payload = await self._integrate(route, event, conn.id)
        if outcome == "integration_timeout":
            await self._send(conn, error_frame("Endpoint request timed out", conn.id, request_id))
        elif outcome == "error":
            await self._send(conn, error_frame("Internal server error", conn.id, request_id))
        elif route.two_way:
            frame = _route_response_frame(payload)
            if frame is _MALFORMED:
                await self._send(conn, error_frame("Internal server error", conn.id, request_id))
            elif isinstance(frame, (str, bytes)):
                await self._send(conn, frame)

    async def _integrate(
        self, route: RouteSpec, event: dict[str, Any], connection_id: str
    ) -> tuple[Outcome, Any]:
        """Invoke the route's Lambda under the integration timeout; log one line."""
        started = time.monotonic()
        route_key = route.route_key
        if route.function_id is None:
            log.info("%s %s %s", route_key, connection_id, "error (route has no integration)")
            return "error", None
        invocation = asyncio.ensure_future(self._lambdas.invoke(route.function_id, event))
        self._tasks.add(invocation)
        invocation.add_done_callback(self._tasks.discard)
        try:
            result = await asyncio.wait_for(
                asyncio.shield(invocation), self._config.integration_timeout_s
            )
        except TimeoutError:
            elapsed = (time.monotonic() - started) * 1000
            log.info("%s %s %s %.0fms", route_key, connection_id, "integration timeout", elapsed)
            return "integration_timeout", None
        except Exception:
            log.exception("%s %s invocation failed inside the sandbox", route_key, connection_id)
            return "error", None
        details = "" if result.worker_pid is None else f" pid={result.worker_pid}"
        if result.init_ms is not None:
            details += f" (cold start {result.init_ms:.0f}ms)"
        if result.outcome == "ok":
            payload = result.payload
            status = payload.get("statusCode", "-") if isinstance(payload, dict) else "-"
        else:
            error = result.error or {}
            status = "timeout" if result.outcome == "timeout" else f"error {error.get('errorType')}"
        log.info("%s %s %s %.0fms%s", route_key, connection_id, status, result.duration_ms, details)
        return ("ok", result.payload) if result.outcome == "ok" else ("error", None)

    # -- sending ----------------------------------------------------------------------------

    async def _send(self, conn: _Connection, data: str | bytes) -> bool:
        """Send one message to an open socket (split into 32 KB frames); False if it is gone."""
        ws = conn.ws
        if conn.state is not ConnState.OPEN or ws is None or ws.closed:
            return False
        payload = data.encode("utf-8") if isinstance(data, str) else data
        opcode = WSMsgType.TEXT if isinstance(data, str) else WSMsgType.BINARY
        conn.touch()
        try:
            if len(payload) <= FRAME_LIMIT or conn.transport is None:
                await ws.send_frame(payload, opcode)
            elif conn.transport.is_closing():
                return False
            else:
                conn.transport.write(_fragments(payload, opcode))
        except (ConnectionError, RuntimeError):
            return False
        return True

    # -- @connections -----------------------------------------------------------------------

    async def _management(self, request: web.Request, raw_id: str) -> web.StreamResponse:
        connection_id = unquote(raw_id)
        method = request.method
        if method not in ("POST", "GET", "DELETE"):
            return _json_response(
                403, {"message": "Missing Authentication Token"}, error_type="ForbiddenException"
            )
        if not is_valid_connection_id(connection_id):
            return _json_response(
                400,
                {"message": f"Invalid connectionId: {connection_id}"},
                error_type="BadRequestException",
            )
        data = b""
        if method == "POST":
            data = await request.read()
            if len(data) > POST_LIMIT:
                return _json_response(
                    413,
                    {"message": "Request entity too large"},
                    error_type="PayloadTooLargeException",
                )
        conn = self._connections.get(connection_id)
        if conn is None or conn.state is not ConnState.OPEN:
            return _gone()
        if method == "POST":
            try:
                text: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data
            if not await self._send(conn, text):
                return _gone()
            return web.Response(status=200, headers=_request_id_header())
        if method == "GET":
            identity = conn.info.identity()
            return _json_response(
                200,
                {
                    "connectedAt": iso8601(conn.info.connected_at),
                    "identity": identity,
                    "lastActiveAt": iso8601(conn.last_active_ms),
                },
            )
        self._begin_close(conn, WSCloseCode.OK, "Connection Closed Normally", frame_reason="")
        return web.Response(status=204, headers=_request_id_header())

    # -- web client -------------------------------------------------------------------------

    async def _static(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="Method Not Allowed")
        root = self._web_root
        if root is None:
            return web.Response(status=404, text="Not Found (no --web-dir)")
        parts = [unquote(segment) for segment in segments if segment]
        if any(p in (".", "..") or "/" in p or "\\" in p or "\0" in p for p in parts):
            return web.Response(status=404, text="Not Found")
        path = root.joinpath(*parts).resolve()
        if not path.is_relative_to(root):
            return web.Response(status=404, text="Not Found")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            return web.Response(status=404, text="Not Found")
        content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(
            path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
        )

    # -- lifecycle --------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox task failed", exc_info=task.exception())

    async def shutdown(self, grace_s: float = 2.0) -> None:
        """Close every socket with 1001, run their $disconnects (bounded), cancel the rest."""
        self._stopping = True
        open_connections = [c for c in self._connections.values() if c.ws is not None]
        for conn in open_connections:
            self._begin_close(conn, WSCloseCode.GOING_AWAY, "Going away", frame_reason="Going away")
        deadline = time.monotonic() + grace_s
        if open_connections:
            waiters = [asyncio.ensure_future(c.done.wait()) for c in open_connections]
            await asyncio.wait(waiters, timeout=max(0.1, deadline - time.monotonic()))
            for waiter in waiters:
                waiter.cancel()
        if self._disconnects:
            await asyncio.wait(
                list(self._disconnects), timeout=max(0.1, deadline - time.monotonic())
            )
        for task in [*self._tasks, *self._disconnects]:
            task.cancel()
        pending = [*self._tasks, *self._disconnects]
        if pending:
            await asyncio.wait(pending, timeout=1.0)


_MALFORMED = object()


def _route_response_frame(payload: Any) -> object:
    """A two-way route's reply frame: its `body` (bytes if base64), None, or _MALFORMED."""
    if not isinstance(payload, dict):
        return _MALFORMED
    body = payload.get("body")
    if body is None:
        return None
    if not isinstance(body, str):
        return json.dumps(body)
    if payload.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            return _MALFORMED
    return body


def _connect_response(outcome: Outcome, payload: Any) -> tuple[int, str | None]:
    """The handshake status and subprotocol for a $connect integration outcome."""
    if outcome == "integration_timeout":
        return 504, None
    if outcome == "error" or not isinstance(payload, dict):
        return 502, None
    status = payload.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return 502, None
    protocol = None
    for name, value in (payload.get("headers") or {}).items():
        if str(name).lower() == "sec-websocket-protocol" and value is not None:
            protocol = str(value)
    if protocol is None:
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            if str(name).lower() == "sec-websocket-protocol" and values:
                protocol = str(values[0])
    return status, protocol


def _connect_rejection(status: int) -> web.Response:
    if status == 502:
        return _json_response(502, {"message": "Internal server error"})
    if status == 504:
        return _json_response(504, {"message": "Endpoint request timed out"})
    return web.Response(status=status, headers=_request_id_header())


def _fragments(payload: bytes, opcode: WSMsgType) -> bytes:
    """`payload` as a fragmented message of FRAME_LIMIT-sized unmasked frames."""
    out = bytearray()
    chunks = [payload[i : i + FRAME_LIMIT] for i in range(0, len(payload), FRAME_LIMIT)]
    for index, chunk in enumerate(chunks):
        fin = 0x80 if index == len(chunks) - 1 else 0
        first = fin | (int(opcode) if index == 0 else 0)
        size = len(chunk)
        if size < 126:
            out += struct.pack("!BB", first, size)
        elif size < 65536:
            out += struct.pack("!BBH", first, 126, size)
        else:
            out += struct.pack("!BBQ", first, 127, size)
        out += chunk
    return bytes(out)


def _is_connections(segment: str) -> bool:
    return unquote(segment) == "@connections"


def _local_port(request: web.Request) -> int:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return int(sockname[1]) if sockname else 0


def _request_id_header() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def _json_response(status: int, body: Any, *, error_type: str | None = None) -> web.Response:
    headers = _request_id_header()
    if error_type is not None:
        headers["x-amzn-ErrorType"] = error_type
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def _gone() -> web.Response:
    # AWS's 410 body is not JSON; botocore takes the error code from the header.
    headers = _request_id_header()
    headers["x-amzn-ErrorType"] = "GoneException"
    return web.Response(status=410, headers=headers)
