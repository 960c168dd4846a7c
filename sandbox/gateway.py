"""The aiohttp applications: the plain one sends each request to the stage or the web
client; the HTTPS one to @connections or Lambda's Invoke API (as on AWS, only over TLS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from sandbox.eventbridge import EventsRecorder, is_eventbridge_call
from sandbox.faults import Faults
from sandbox.invoke import InvokeApi, is_invoke_path
from sandbox.lambdas import LambdaService
from sandbox.management import ConnectionsApi
from sandbox.responses import json_response
from sandbox.stage import INTEGRATION_TIMEOUT_S, StageLimits, WebSocketStage
from sandbox.static import StaticSite, sign_in_document
from sandbox.template import ApiSpec, FunctionSpec


@dataclass(frozen=True)
class GatewayConfig:
    """The API to serve, the web client's directory, the region and the gateway's limits."""

    api: ApiSpec
    web_dir: Path | None
    region: str
    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S
    # The stack's functions (logical id -> spec), invocable through Lambda's Invoke API.
    functions: Mapping[str, FunctionSpec] = field(default_factory=dict)
    # Where the HTTPS listener serves @connections and Invoke (`https://127.0.0.1:<port>`),
    # named in the plain port's refusal of those paths.
    api_url: str = ""
    # Where PutEvents' events are written (sandbox/eventbridge.py); None: not served.
    events_file: Path | None = None


class Gateway:
    """One WebSocket API: its stages, its management API, and the web client beside them."""

    def __init__(
        self, config: GatewayConfig, lambdas: LambdaService, faults: Faults | None = None
    ) -> None:
        self._stages = frozenset(config.api.stages)
        self._stage = WebSocketStage(
            config.api,
            lambdas,
            StageLimits(
                idle_timeout_s=config.idle_timeout_s,
                max_duration_s=config.max_duration_s,
                integration_timeout_s=config.integration_timeout_s,
            ),
            region=config.region,
            faults=faults,
        )
        self._connections = ConnectionsApi(self._stage, lambdas, faults)
        self._site = StaticSite(
            config.web_dir,
            config.api.stages[0],
            sign_in=sign_in_document(config.api, config.functions),
        )
        self._invoke = InvokeApi(config.functions, lambdas, region=config.region)
        self._api_url = config.api_url
        self._events = EventsRecorder(config.events_file) if config.events_file else None

    def app(self) -> web.Application:
        """The plain application: the WebSocket stages and the web client."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def api_app(self) -> web.Application:
        """The application of the HTTPS listener: @connections and Lambda's Invoke API."""
        # Room for the Invoke API's 6 MB payloads; @connections checks its own 128 KB limit.
        app = web.Application(client_max_size=7 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch_api)
        return app

    async def shutdown(self, grace_s: float = 2.0) -> None:
        """Close every socket with 1001, run their $disconnects (bounded), cancel the rest."""
        await self._stage.shutdown(grace_s)
        await self._invoke.shutdown()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segments = _segments(request)
        first = segments[0] if segments else ""
        if _connections_id(segments, self._stages) is not None or is_invoke_path(segments):
            return json_response(
                403,
                {
                    "message": "Forbidden: @connections and Lambda's Invoke API are served over "
                    f"HTTPS only, at {self._api_url or 'the HTTPS port'} (see the banner)"
                },
                error_type="ForbiddenException",
            )
        if segments == ["events"] and self._events is not None:
            return await self._events.page(request)
        if first in self._stages:
            if len(segments) == 1:
                return await self._stage.upgrade(request, first)
            return json_response(403, {"message": "Forbidden"}, error_type="ForbiddenException")
        return await self._site.handle(request, segments)

    async def _dispatch_api(self, request: web.Request) -> web.StreamResponse:
        segments = _segments(request)
        if is_invoke_path(segments):
            return await self._invoke.handle(request, segments[2])
        if self._events is not None and is_eventbridge_call(request):
            return await self._events.handle(request)
        raw_id = _connections_id(segments, self._stages)
        if raw_id is not None:
            return await self._connections.handle(request, raw_id)
        return json_response(403, {"message": "Forbidden"}, error_type="ForbiddenException")


def _segments(request: web.Request) -> list[str]:
    """The raw path split on `/`, without a trailing empty segment."""
    segments = request.rel_url.raw_path.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        segments = segments[:-1]
    return segments


def _connections_id(segments: list[str], stages: frozenset[str]) -> str | None:
    """The raw id of `/{stage}/@connections/{id}` or `/@connections/{id}`, else None."""
    if len(segments) == 3 and segments[0] in stages and _is_connections(segments[1]):
        return segments[2]
    if len(segments) == 2 and _is_connections(segments[0]):
        return segments[1]
    return None


def _is_connections(segment: str) -> bool:
    return unquote(segment) == "@connections"
