"""The aiohttp application: sends each request to the stage, @connections, Lambda's Invoke
API or the web client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from sandbox.faults import Faults
from sandbox.invoke import InvokeApi, is_invoke_path
from sandbox.lambdas import LambdaService
from sandbox.management import ConnectionsApi
from sandbox.responses import json_response
from sandbox.stage import INTEGRATION_TIMEOUT_S, StageLimits, WebSocketStage
from sandbox.static import StaticSite
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
        self._site = StaticSite(config.web_dir, config.api.stages[0])
        self._invoke = InvokeApi(config.functions, lambdas, region=config.region)

    def app(self) -> web.Application:
        """The aiohttp application serving every path of the sandbox."""
        # Room for the Invoke API's 6 MB payloads; @connections checks its own 128 KB limit.
        app = web.Application(client_max_size=7 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def shutdown(self, grace_s: float = 2.0) -> None:
        """Close every socket with 1001, run their $disconnects (bounded), cancel the rest."""
        await self._stage.shutdown(grace_s)
        await self._invoke.shutdown()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segments = request.rel_url.raw_path.split("/")[1:]
        if len(segments) > 1 and segments[-1] == "":
            segments = segments[:-1]
        first = segments[0] if segments else ""
        if is_invoke_path(segments):
            return await self._invoke.handle(request, segments[2])
        if first in self._stages:
            rest = segments[1:]
            if not rest:
                return await self._stage.upgrade(request, first)
            if len(rest) == 2 and _is_connections(rest[0]):
                return await self._connections.handle(request, rest[1])
            return json_response(403, {"message": "Forbidden"}, error_type="ForbiddenException")
        if len(segments) == 2 and _is_connections(first):
            return await self._connections.handle(request, segments[1])
        return await self._site.handle(request, segments)


def _is_connections(segment: str) -> bool:
    return unquote(segment) == "@connections"
