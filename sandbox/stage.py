"""The WebSocket stage: connection lifecycle, timers, message routing, the Lambda integration."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from sandbox import authorizer
from sandbox.aiohttp_internals import FrameLimitedWebSocket
from sandbox.events import (
    ConnectionInfo,
    ForwardingInfo,
    authorizer_event,
    connect_event,
    disconnect_event,
    epoch_ms,
    error_frame,
    gateway_headers,
    message_event,
    new_id,
    without_hop_by_hop,
)
from sandbox.faults import Faults
from sandbox.lambdas import LambdaService
from sandbox.responses import json_response, request_id_header
from sandbox.routing import RouteSelector
from sandbox.template import ApiSpec, AuthorizerSpec, RouteSpec

log = logging.getLogger("sandbox")

FRAME_LIMIT = 32 * 1024
MESSAGE_LIMIT = 128 * 1024
INTEGRATION_TIMEOUT_S = 29.0
CLOSE_TIMEOUT_S = 2.0
NO_STATUS = 1005
NO_STATUS_REASON = "Client-side close frame status not set"
ABNORMAL = 1006

# What API Gateway makes of an integration: a response, a failure of any kind (including the
# function's own timeout, which Lambda reports as an error), or no answer within its timeout.
IntegrationOutcome = Literal["ok", "error", "integration_timeout"]


@dataclasses.dataclass(frozen=True)
class IntegrationResult:
    """The outcome of one Lambda integration, and the function's payload (with its size in
    bytes) when it is "ok"."""

    outcome: IntegrationOutcome
    payload: Any = None
    payload_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class StageLimits:
    """The connection timers and the integration timeout (AWS: 600 s, 2 h, 29 s)."""

    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S


class ConnState(enum.Enum):
    """Where a connection is in its life; only OPEN connections accept posts."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclasses.dataclass
class Connection:
    """One client socket, from its upgrade request until $disconnect has been started."""

    info: ConnectionInfo
    state: ConnState = ConnState.CONNECTING
    ws: FrameLimitedWebSocket | None = None
    last_active: float = 0.0  # time.monotonic() of the last traffic in either direction
    opened: float = 0.0  # time.monotonic() when the handshake completed
    close_code: int | None = None
    close_reason: str = ""
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    faulty: bool = False  # the @connections POST faults apply to it (sandbox.faults)

    @property
    def id(self) -> str:
        """The connection id."""
        return self.info.connection_id

    def touch(self) -> None:
        """Record traffic now (it resets the idle timer)."""
        self.last_active = time.monotonic()

    def last_active_ms(self) -> int:
        """When the last traffic passed, in epoch milliseconds (GetConnection's lastActiveAt)."""
        return epoch_ms() - round((time.monotonic() - self.last_active) * 1000)

    def record_close(self, code: int, reason: str) -> None:
        """Keep the first close code and reason seen; $disconnect reports them."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason


class WebSocketStage:
    """The API's stages: the upgrade and $connect, message routing, $disconnect and timers.

    Every stage of the API shares the routes and one table of connections.
    """

    def __init__(
        self,
        api: ApiSpec,
        lambdas: LambdaService,
        limits: StageLimits,
        *,
        region: str,
        faults: Faults | None = None,
    ) -> None:
        self._api = api
        self._region = region
        self._lambdas = lambdas
        self._limits = limits
        self._faults = faults or Faults()
        self._routes: dict[str, RouteSpec] = dict(api.routes)
        self._selector = RouteSelector(api.route_selection_expression)
        self._connections: dict[str, Connection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._disconnects: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def open_connection(self, connection_id: str) -> Connection | None:
        """The connection with this id if it is open (not connecting, closing or gone)."""
        conn = self._connections.get(connection_id)
        if conn is None or conn.state is not ConnState.OPEN:
            return None
        return conn

    # -- $connect and the socket ------------------------------------------------------------

    async def upgrade(self, request: web.Request, stage: str) -> web.StreamResponse:
        """Serve a request on the stage URL: run $connect, then the socket until it closes."""
        if request.headers.get("Upgrade", "").strip().lower() != "websocket":
            return web.Response(
                status=426, text="Upgrade Required", headers={"Upgrade": "websocket"}
            )
        ws = FrameLimitedWebSocket(
            frame_limit=FRAME_LIMIT,
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
        info = ConnectionInfo(
            connection_id=new_id(),
            connected_at=received_ms,
            api_id=self._api.api_id,
            stage=stage,
            domain_name=request.host,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent"),
        )
        query = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
        conn = Connection(info=info, faulty=self._faults.selects(query))
        self._connections[conn.id] = conn
        accepted = False
        try:
            rejection = await self._connect(request, conn, ws, received_ms, query)
            if rejection is not None:
                return rejection
            try:
                await ws.prepare(request)
            except ConnectionResetError:
                # The client left while $connect ran: the connection was never established,
                # so there is no $disconnect (and its id answers 410).
                log.info("%s %s %s", "$connect", conn.id, "client left before the handshake")
                return web.Response(status=400)
            accepted = True
        finally:
            if not accepted:
                self._connections.pop(conn.id, None)
        conn.ws = ws
        conn.opened = time.monotonic()
        conn.touch()
        conn.state = ConnState.OPEN
        try:
            await self._serve(conn, ws)
        finally:
            self._finish(conn)
        return ws

    async def _connect(
        self,
        request: web.Request,
        conn: Connection,
        ws: web.WebSocketResponse,
        received_ms: int,
        query: list[tuple[str, str]],
    ) -> web.Response | None:
        """Run the authorizer and the $connect integration, if the API has them.

        Returns the handshake's rejection, or None to accept (with the subprotocol the
        $connect function chose set on `ws`). Both events carry the time the upgrade request
        arrived as `requestTimeEpoch`, which is also the connection's `connectedAt`.
        """
        route = self._routes.get("$connect")
        if route is None:
            return None
        raw_headers = [
            (name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
            for name, value in request.raw_headers
        ]
        headers = gateway_headers(
            raw_headers,
            source_ip=conn.info.source_ip,
            forwarding=ForwardingInfo(proto=request.scheme, port=_local_port(request)),
            request_ms=received_ms,
        )
        request_id = new_id()
        if route.authorizer is not None:
            verdict = await self._authorize(
                route.authorizer,
                conn,
                headers=headers,
                query=query,
                request_id=request_id,
                request_ms=received_ms,
            )
            if verdict.status != 200:
                return _authorizer_rejection(verdict.status)
            conn.info = dataclasses.replace(conn.info, authorizer=verdict.authorizer)
        event = connect_event(
            conn.info,
            headers=without_hop_by_hop(headers),
            query=query,
            request_id=request_id,
            request_ms=received_ms,
        )
        result = await self._integrate(route.route_key, route.function_id, event, conn.id)
        status, protocol = _connect_response(result)
        if not 200 <= status < 300:
            return _connect_rejection(status)
        if protocol is not None:
            ws.headers["Sec-WebSocket-Protocol"] = protocol
        return None

    async def _authorize(
        self,
        spec: AuthorizerSpec,
        conn: Connection,
        *,
        headers: list[tuple[str, str]],
        query: list[tuple[str, str]],
        request_id: str,
        request_ms: int,
    ) -> authorizer.Verdict:
        """Run the $connect authorizer, unless an identity source is missing (then 401)."""
        missing = authorizer.missing_identity(spec.identity_sources, headers, query)
        if missing is not None:
            verdict = authorizer.Verdict(401, f"no {missing.expression}; authorizer not invoked")
        else:
            info = conn.info
            event = authorizer_event(
                info,
                method_arn=authorizer.method_arn(self._region, info.api_id, info.stage),
                headers=headers,
                query=query,
                request_id=request_id,
                request_ms=request_ms,
            )
            started = time.monotonic()
            result = await self._integrate("$connect authorizer", spec.function_id, event, conn.id)
            if result.outcome != "ok":
                verdict = authorizer.Verdict(500, "authorizer failed")
            else:
                verdict = authorizer.judge(
                    result.payload,
                    payload_bytes=result.payload_bytes,
                    method_arn=event["methodArn"],
                    latency_ms=round((time.monotonic() - started) * 1000),
                )
        log.info("%s %s %s (%s)", "$connect authorizer", conn.id, verdict.status, verdict.reason)
        return verdict

    async def _serve(self, conn: Connection, ws: web.WebSocketResponse) -> None:
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

    def _finish(self, conn: Connection) -> None:
        """The socket is gone: stop accepting posts, then run $disconnect (once)."""
        conn.record_close(ABNORMAL, "")
        conn.state = ConnState.CLOSED
        self._connections.pop(conn.id, None)
        route = self._routes.get("$disconnect")
        if route is not None and self._faults.drops_disconnect():
            log.info("fault: $disconnect of %s dropped (never delivered)", conn.id)
        elif route is not None:
            task = asyncio.create_task(self._run_disconnect(conn, route))
            self._disconnects.add(task)
            task.add_done_callback(self._disconnects.discard)
        conn.done.set()

    async def _run_disconnect(self, conn: Connection, route: RouteSpec) -> None:
        event = disconnect_event(
            conn.info,
            status_code=conn.close_code if conn.close_code is not None else ABNORMAL,
            reason=conn.close_reason,
            request_id=new_id(),
            request_ms=epoch_ms(),
        )
        await self._integrate(route.route_key, route.function_id, event, conn.id)

    async def _watch_timeouts(self, conn: Connection) -> None:
        idle = self._limits.idle_timeout_s
        hard_deadline = conn.opened + self._limits.max_duration_s
        while True:
            deadline = min(conn.last_active + idle, hard_deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        self.close(conn, WSCloseCode.GOING_AWAY, "Going away", frame_reason="Going away")

    def close(self, conn: Connection, code: int, reason: str, *, frame_reason: str) -> None:
        """Close an open socket from the server side; $disconnect gets `code`/`reason`."""
        if conn.state is not ConnState.OPEN or conn.ws is None:
            return
        conn.record_close(code, reason)
        conn.state = ConnState.CLOSING
        self._spawn(conn.ws.close(code=code, message=frame_reason.encode("utf-8")))

    # -- messages ---------------------------------------------------------------------------

    async def _on_message(self, conn: Connection, body: str, received_ms: int) -> None:
        request_id = new_id()
        route_key = self._selector.select(body, self._routes)
        if route_key is None:
            log.info("%s %s %s", "(no route)", conn.id, "Forbidden")
            await self.send(conn, error_frame("Forbidden", conn.id, request_id))
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
        result = await self._integrate(route_key, route.function_id, event, conn.id)
        if result.outcome == "integration_timeout":
            await self.send(conn, error_frame("Endpoint request timed out", conn.id, request_id))
        elif result.outcome == "error":
            await self.send(conn, error_frame("Internal server error", conn.id, request_id))
        elif route.two_way:
            frame = _route_response_frame(result.payload)
            if frame is _MALFORMED:
                await self.send(conn, error_frame("Internal server error", conn.id, request_id))
            elif isinstance(frame, (str, bytes)):
                await self.send(conn, frame)

    async def _integrate(
        self, label: str, function_id: str | None, event: dict[str, Any], connection_id: str
    ) -> IntegrationResult:
        """Invoke a function under the integration timeout; log one line headed by `label`."""
        started = time.monotonic()
        if function_id is None:
            log.info("%s %s %s", label, connection_id, "error (route has no integration)")
            return IntegrationResult("error")
        invocation = asyncio.ensure_future(self._lambdas.invoke(function_id, event, label=label))
        self._tasks.add(invocation)
        invocation.add_done_callback(self._tasks.discard)
        try:
            result = await asyncio.wait_for(
                asyncio.shield(invocation), self._limits.integration_timeout_s
            )
        except TimeoutError:
            elapsed = (time.monotonic() - started) * 1000
            log.info("%s %s %s %.0fms", label, connection_id, "integration timeout", elapsed)
            return IntegrationResult("integration_timeout")
        except Exception:
            log.exception("%s %s invocation failed inside the sandbox", label, connection_id)
            return IntegrationResult("error")
        details = "" if result.worker_pid is None else f" pid={result.worker_pid}"
        if result.init_ms is not None:
            details += f" (cold start {result.init_ms:.0f}ms)"
        if result.status == "ok":
            payload = result.payload
            status = payload.get("statusCode", "-") if isinstance(payload, dict) else "-"
        else:
            error = result.error or {}
            status = "timeout" if result.status == "timeout" else f"error {error.get('errorType')}"
        log.info("%s %s %s %.0fms%s", label, connection_id, status, result.duration_ms, details)
        if result.status != "ok":
            return IntegrationResult("error")
        return IntegrationResult("ok", result.payload, result.payload_bytes)

    # -- sending ----------------------------------------------------------------------------

    async def send(self, conn: Connection, data: str | bytes) -> bool:
        """Send one message to an open socket (split into 32 KB frames); False if it is gone."""
        ws = conn.ws
        if conn.state is not ConnState.OPEN or ws is None or ws.closed:
            return False
        payload = data.encode("utf-8") if isinstance(data, str) else data
        opcode = WSMsgType.TEXT if isinstance(data, str) else WSMsgType.BINARY
        conn.touch()
        try:
            return await ws.send_message(payload, opcode)
        except (ConnectionError, RuntimeError):
            return False

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
            self.close(conn, WSCloseCode.GOING_AWAY, "Going away", frame_reason="Going away")
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


def _connect_response(result: IntegrationResult) -> tuple[int, str | None]:
    """The handshake status and subprotocol for the result of the $connect integration."""
    if result.outcome == "integration_timeout":
        return 504, None
    payload = result.payload
    if result.outcome == "error" or not isinstance(payload, dict):
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


def _authorizer_rejection(status: int) -> web.Response:
    message = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal server error")
    return json_response(status, {"message": message})


def _connect_rejection(status: int) -> web.Response:
    if status == 502:
        return json_response(502, {"message": "Internal server error"})
    if status == 504:
        return json_response(504, {"message": "Endpoint request timed out"})
    return web.Response(status=status, headers=request_id_header())


def _local_port(request: web.Request) -> int:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return int(sockname[1]) if sockname else 0
