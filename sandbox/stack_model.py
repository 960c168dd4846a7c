"""The stack the sandbox runs, as read from a synthesized template: its API, routes,
authorizers, functions and tables (sandbox/template.py reads them; sandbox/intrinsics.py
resolves the template's values for them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table as `create_table` wants it, plus its TTL attribute."""

    logical_id: str
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    local_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    ttl_attribute: str | None = None
    stream_view_type: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: name and ARN, where its code is, how to call it, its raw environment."""

    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    code_dir: Path
    environment: dict[str, Any]


@dataclass(frozen=True)
class IdentitySource:
    """A request parameter a REQUEST authorizer requires: a header or a query parameter."""

    location: Literal["header", "querystring"]
    name: str

    @property
    def expression(self) -> str:
        """The identity source as the template writes it, e.g. route.request.querystring.token."""
        return f"route.request.{self.location}.{self.name}"


@dataclass(frozen=True)
class AuthorizerSpec:
    """A Lambda REQUEST authorizer: the function to invoke and the parameters it requires."""

    logical_id: str
    name: str
    function_id: str
    identity_sources: tuple[IdentitySource, ...]


@dataclass(frozen=True)
class RouteSpec:
    """One route: its key, the function behind it, whether its response is returned, and the
    authorizer that guards it (only ever $connect)."""

    route_key: str
    function_id: str | None
    two_way: bool
    authorizer: AuthorizerSpec | None = None


@dataclass(frozen=True)
class ApiSpec:
    """The WebSocket API: id, route selection expression, routes by key, stage names."""

    logical_id: str
    name: str
    api_id: str
    route_selection_expression: str
    routes: dict[str, RouteSpec]
    stages: tuple[str, ...]


@dataclass(frozen=True)
class HttpRouteSpec:
    """One route of an HTTP API: `GET /rooms/{room}/members`, the function behind it, and
    whether it requires IAM (SigV4) authorization."""

    route_key: str
    method: str
    path: str
    function_id: str
    iam: bool


@dataclass(frozen=True)
class HttpApiSpec:
    """An HTTP API (payload format 2.0, the `$default` stage): its routes and the stage's
    default throttle (None: API Gateway's account-level limits only)."""

    logical_id: str
    name: str
    api_id: str
    routes: tuple[HttpRouteSpec, ...]
    throttle_burst: int | None = None
    throttle_rate: float | None = None


@dataclass(frozen=True)
class StackSpec:
    """Everything the sandbox emulates from one template."""

    template_path: Path
    stack_name: str
    api: ApiSpec
    functions: dict[str, FunctionSpec]
    tables: dict[str, TableSpec]
    resources: dict[str, Any]
    parameters: dict[str, Any]
    mappings: dict[str, Any]
    warnings: list[str]
    http_apis: tuple[HttpApiSpec, ...] = ()
